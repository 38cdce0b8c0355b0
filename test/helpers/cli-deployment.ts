/**
 * A deployment as the CLI tests meet it: a fresh migrated database and a folder holding CAIRN_HOME
 * (`home/`, its data directory `home/datasets`) and the place of its cairn.yaml, with `cairn(...args)`
 * running the real CLI there (DATABASE_URL, CAIRN_HOME, CAIRN_CONFIG set). All removed when `t` ends.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { runCommand } from './engine-extra.ts'
import type { CommandResult } from './engine-extra.ts'
import { createTestDatabase, testLogger } from './postgres.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

export interface CliDeployment {
  /** The CLI's working directory; cairn.yaml would be here. */
  dir: string
  /** CAIRN_HOME. */
  home: string
  /** The data directory of CAIRN_HOME (datasets and `_models`). */
  dataDir: string
  url: string
  db: Db
  log: Logger
  /** `cairn ARGS...` as a real process, run to its end. */
  cairn(...args: string[]): Promise<CommandResult>
}

export async function startCliDeployment(t: { after(fn: () => Promise<void> | void): void }): Promise<CliDeployment> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-deployment-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const home = join(dir, 'home')
  mkdirSync(home)
  const log = testLogger()
  const url = await createTestDatabase(t)
  const db = createDb(url, { log })
  t.after(() => db.close())
  await migrate(db, log)
  const env = { ...process.env, DATABASE_URL: url, CAIRN_HOME: home, CAIRN_CONFIG: join(dir, 'cairn.yaml'), CAIRN_LOG_LEVEL: 'error' }
  return {
    dir,
    home,
    dataDir: join(home, 'datasets'),
    url,
    db,
    log,
    cairn: (...args) => runCommand(process.execPath, [MAIN, ...args], { cwd: dir, env }),
  }
}
