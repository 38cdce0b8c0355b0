/**
 * Dataset files written under a strict umask (folders 0700, files 0600) are made readable by the
 * task user for the built-in trainer: traverse on the folders, read on the files, nothing else.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { grantTaskRead } from '../../operators/train/dataset-access.ts'
import { runProcess } from '../../engine/process/run-process.ts'
import { resolveTaskUser } from '../../engine/process/task-user.ts'
import { testLogger } from '../helpers/postgres.ts'

test('grantTaskRead: the task user can read dataset files written under umask 077', async (t) => {
  const top = mkdtempSync(join(tmpdir(), 'cairn-ds-access-'))
  t.after(() => rmSync(top, { recursive: true, force: true }))
  chmodSync(top, 0o711)
  const datasets = join(top, 'datasets')
  const folder = join(datasets, 'churn_training', 'v1')
  mkdirSync(folder, { recursive: true, mode: 0o700 })
  chmodSync(datasets, 0o700)
  chmodSync(join(datasets, 'churn_training'), 0o700)
  const file = join(folder, 'part-0.parquet')
  writeFileSync(file, 'rows', { mode: 0o600 })
  const user = process.getuid?.() === 0 ? await resolveTaskUser(undefined, testLogger()) : undefined
  const readAsTask = async (): Promise<number | null> => {
    const exit = await runProcess({ argv: ['/bin/cat', file], env: { PATH: '/usr/bin:/bin' }, cwd: '/', ...(user ? { user } : {}), onLine: () => undefined })
    return exit.exitCode
  }
  if (user) assert.notEqual(await readAsTask(), 0, 'unreadable before')
  const changed = await grantTaskRead(datasets, [file])
  assert.equal(changed.length, 4)
  assert.equal(await readAsTask(), 0)
  assert.equal(statSync(folder).mode & 0o777, 0o701)
  assert.equal(statSync(file).mode & 0o777, 0o604)
  assert.deepEqual(await grantTaskRead(datasets, [file]), [], 'nothing to change the second time')
})
