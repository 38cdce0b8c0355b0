/**
 * The scheduler syncing a folder of 1,000 DAG files keeps its event loop responsive (heartbeats,
 * LISTEN and the web server of `cairn up` share it) and does not hold DAG rows locked for the length
 * of the sync (a `cairn pause`, a trigger or the scheduler creating runs would wait for it).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { testLogger } from '../helpers/postgres.ts'
import { probeRowLock } from '../helpers/row-lock-probe.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const FILES = 1000
const HELLO = readFileSync(new URL('../../dags/hello.yaml', import.meta.url), 'utf8')
// Unscheduled: the scheduler has nothing to do but sync the folder.
const dagFile = (i: number, greeting: string): string =>
  HELLO.replace('dag: hello', `dag: dag_${i}`).replace('default: hello', `default: ${greeting}`).replace(/^schedule: .*\n/m, '')

test(`a sync of ${FILES} DAG files never stalls the event loop and never holds a DAG row for long`, async (t) => {
  const engine = await startTestEngine(t, { dags: {}, scheduler: { syncEveryMs: 200, loopMs: 200 } })
  const probeDb = createDb(engine.url, { log: testLogger(), max: 1 })
  t.after(() => probeDb.close())
  const delay = monitorEventLoopDelay({ resolution: 10 })

  // First load: every file new. (The test's own synchronous writes are not measured: reset after them.)
  for (let i = 0; i < FILES; i++) writeFileSync(join(engine.dagsFolder, `dag_${i}.yaml`), dagFile(i, 'hello'))
  delay.enable()
  await waitFor('every DAG to load', async () => (await count(engine.db, "SELECT count(*) AS n FROM cairn.dag WHERE NOT removed AND version_id IS NOT NULL")) === FILES, 120_000, 100)
  const firstLoadMax = delay.max / 1e6

  // Every file touched (a checkout): nothing to write, no row locked. Every file changed: new versions.
  const touchedLock = probeRowLock(probeDb, 'dag_0')
  const later = Date.now() / 1000 + 10
  for (let i = 0; i < FILES; i++) utimesSync(join(engine.dagsFolder, `dag_${i}.yaml`), later, later)
  delay.reset()
  const versionsBefore = await count(engine.db, 'SELECT count(*) AS n FROM cairn.dag_version')
  await new Promise((r) => setTimeout(r, 3000)) // a few sync passes
  const touchedLockedMs = await touchedLock.stop()
  assert.equal(await count(engine.db, 'SELECT count(*) AS n FROM cairn.dag_version'), versionsBefore)

  const changedLock = probeRowLock(probeDb, 'dag_0')
  const touchMax = delay.max / 1e6
  for (let i = 0; i < FILES; i++) writeFileSync(join(engine.dagsFolder, `dag_${i}.yaml`), dagFile(i, 'howdy'))
  delay.reset()
  await waitFor(
    'every DAG changed',
    async () => (await count(engine.db, "SELECT count(*) AS n FROM cairn.dag d JOIN cairn.dag_version v ON v.version_id = d.version_id WHERE v.source LIKE '%default: howdy%'")) === FILES,
    120_000,
    100,
  )
  const changedLockedMs = await changedLock.stop()
  const changeMax = delay.max / 1e6
  delay.disable()

  t.diagnostic(`event-loop max: first load ${firstLoadMax.toFixed(0)} ms, touched ${touchMax.toFixed(0)} ms, changed ${changeMax.toFixed(0)} ms; dag_0 row locked: touched ${touchedLockedMs.toFixed(0)} ms, changed ${changedLockedMs.toFixed(0)} ms`)
  // Generous bounds for a loaded 2-core machine; a sync that validates on the main thread or holds every
  // row until the whole folder is done measures seconds here.
  assert.ok(firstLoadMax < 500, `event loop stalled ${firstLoadMax.toFixed(0)} ms during the first load`)
  assert.ok(touchMax < 500, `event loop stalled ${touchMax.toFixed(0)} ms after every file was touched`)
  assert.ok(changeMax < 500, `event loop stalled ${changeMax.toFixed(0)} ms after every file changed`)
  assert.ok(touchedLockedMs < 200, `dag_0 was locked ${touchedLockedMs.toFixed(0)} ms although no file changed`)
  assert.ok(changedLockedMs < 1500, `dag_0 was locked ${changedLockedMs.toFixed(0)} ms at a stretch while the folder changed`)
})

async function count(db: Db, sql: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(sql)
  return Number(rows[0]!.n)
}
