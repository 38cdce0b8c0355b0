/**
 * The attempt folders of pruned runs: real runs through a worker leave their folders under the work root
 * (owned by the task user when the tests run as root); once retention has deleted a run, the sweep removes
 * its folder, and nothing else: not the folders of runs that still exist however old, not a folder that
 * changed within the grace period, not a folder whose name is not a run id, and nothing a link planted by
 * the task leads to.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { pruneFinishedRuns } from '../../engine/store/prune.ts'
import { resolveTaskUser } from '../../engine/process/task-user.ts'
import { sweepPrunedRunFolders } from '../../engine/worker/work-sweep.ts'
import { startTestEngine } from '../helpers/engine.ts'
import { testLogger } from '../helpers/postgres.ts'
import { waitForDags } from '../helpers/run-rows.ts'

const HOUR = 3_600_000

test('the attempt folders of a pruned run are swept; those of existing runs, fresh folders, foreign folders and link targets stay', async (t) => {
  // The task leaves a file, and a link to a file outside that the sweep must never follow.
  const outside = await mkdtemp(join(os.tmpdir(), 'cairn-sweep-outside-'))
  t.after(() => rm(outside, { recursive: true, force: true }))
  const precious = join(outside, 'precious.txt')
  await writeFile(precious, 'keep me\n', { mode: 0o644 })
  const engine = await startTestEngine(t, {
    inProcessWorkers: 1,
    dags: {
      'leave.yaml': `dag: leave
tasks:
  make:
    operator: shell
    params: { command: [sh, -c, 'echo data > left.txt && ln -s ${precious} link && mkdir -p deep/er && ln -s ${outside} deep/er/dir'] }
`,
    },
  })
  await waitForDags(engine.db, ['leave'])
  const runs: string[] = []
  for (let i = 0; i < 3; i++) {
    const runId = await engine.trigger('leave')
    assert.equal(await engine.waitForRun(runId), 'success')
    runs.push(runId)
  }
  const workRoot = join(engine.dir, 'work')
  const [pruned, prunedFresh, kept] = runs as [string, string, string]
  for (const run of runs) assert.ok(existsSync(join(workRoot, run, 'make', '1', 'left.txt')), `the attempt folder of ${run} is there`)

  // Retention deletes two runs; all three folders are made old except one of the pruned.
  await engine.db.query(`UPDATE cairn.run SET ended_at = ended_at - interval '100 days', queued_at = queued_at - interval '100 days' WHERE run_id = ANY($1::text[])`, [[pruned, prunedFresh]])
  const counts = await pruneFinishedRuns(engine.db, { before: new Date(Date.now() - 90 * 24 * HOUR) })
  assert.equal(counts.runs, 2)
  const old = new Date(Date.now() - 2 * HOUR)
  for (const run of [pruned, kept]) await utimes(join(workRoot, run), old, old)
  // A folder someone else put there, old, named like no run id cairn makes.
  const foreign = join(workRoot, 'notes')
  await mkdir(foreign)
  await utimes(foreign, old, old)

  const user = process.getuid?.() === 0 ? await resolveTaskUser(undefined, testLogger()) : undefined
  const result = await sweepPrunedRunFolders(engine.db, workRoot, { ...(user ? { user } : {}) })
  assert.deepEqual(result, { removed: [pruned], failed: [] })
  assert.equal(existsSync(join(workRoot, pruned)), false, 'the pruned run folder is gone')
  assert.ok(existsSync(join(workRoot, prunedFresh, 'make', '1', 'left.txt')), 'a pruned run folder changed within the grace period stays')
  assert.ok(existsSync(join(workRoot, kept, 'make', '1', 'left.txt')), 'an old folder of an existing run stays')
  assert.ok(existsSync(foreign), 'a folder that is not a run folder stays')
  assert.equal(await readFile(precious, 'utf8'), 'keep me\n', 'nothing a planted link leads to is touched')
  assert.ok(existsSync(outside))

  // Later, with no grace left, the other pruned run's folder goes too; a second sweep finds nothing.
  const later = await sweepPrunedRunFolders(engine.db, workRoot, { ...(user ? { user } : {}), now: () => Date.now() + 2 * HOUR })
  assert.deepEqual(later.removed, [prunedFresh])
  assert.deepEqual((await sweepPrunedRunFolders(engine.db, workRoot, { now: () => Date.now() + 2 * HOUR })).removed, [])
  assert.ok(existsSync(join(workRoot, kept)))
  assert.equal(await readFile(precious, 'utf8'), 'keep me\n')
})
