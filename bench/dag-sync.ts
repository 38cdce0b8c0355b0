/**
 * The scheduler's DAG folder sync on 1,000 DAG files: how long each kind of pass takes, the longest
 * event-loop stall during it (perf_hooks.monitorEventLoopDelay: what heartbeats, LISTEN and the web
 * server of `cairn up` wait for) and how busy the main thread is (event-loop utilization).
 * Passes: first load (1,000 new DAGs), nothing changed, every file touched (same content), every
 * file changed (1,000 new versions). Prints figures; never pass/fail.
 * Usage: node bench/dag-sync.ts [files]
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { silentLogger } from '../engine/log.ts'
import { createDagSync } from '../engine/scheduler/dag-sync.ts'
import { createDb } from '../engine/store/db.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { migrate } from '../engine/store/migrate.ts'
import { probeRowLock } from '../test/helpers/row-lock-probe.ts'

const FILES = Number(process.argv[2] ?? 1000)
const log = silentLogger()
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-dag-sync-'))
const folder = join(dir, 'dags')
mkdirSync(folder)
const template = readFileSync(new URL('../dags/hello.yaml', import.meta.url), 'utf8')
const write = (i: number, word: string): void => writeFileSync(join(folder, `dag_${i}.yaml`), template.replace('dag: hello', `dag: dag_${i}`).replace('default: hello', `default: ${word}`))
for (let i = 0; i < FILES; i++) write(i, 'hello')

const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
try {
  const db = createDb(pg.url, { log })
  await migrate(db, log)
  const sync = createDagSync({ folder, cwd: dir, names: undefined, log })
  const probe = createDb(pg.url, { log, max: 1 })
  const measure = async (label: string): Promise<void> => {
    const lock = probeRowLock(probe, 'dag_0')
    const delay = monitorEventLoopDelay({ resolution: 5 })
    delay.enable()
    const elu = performance.eventLoopUtilization()
    const started = performance.now()
    const result = await sync.sync(db)
    const ms = performance.now() - started
    const busy = performance.eventLoopUtilization(elu)
    delay.disable()
    const lockedMs = await lock.stop()
    console.log(
      `${label.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms  event-loop max ${(delay.max / 1e6).toFixed(0).padStart(4)} ms  p99 ${(delay.percentile(99) / 1e6).toFixed(0).padStart(4)} ms  main thread busy ${(busy.utilization * 100).toFixed(0).padStart(3)}%  dag_0 row locked ${lockedMs.toFixed(0).padStart(5)} ms  (${result.changed.length} changed)`,
    )
  }
  console.log(`DAG sync of ${FILES} files`)
  await measure('first load')
  await measure('nothing changed')
  const later = Date.now() / 1000 + 5
  for (let i = 0; i < FILES; i++) utimesSync(join(folder, `dag_${i}.yaml`), later, later)
  await measure('every file touched')
  for (let i = 0; i < FILES; i++) write(i, 'howdy')
  await measure('every file changed')
  await probe.close()
  await db.close()
} finally {
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}

