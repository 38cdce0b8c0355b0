/**
 * The job handle stored with an attempt (re-attach), on a real database, scheduler and web server:
 * - recording is fenced by the claim (a cancelled attempt refuses it) and an attempt names one job, ever;
 * - the lost-worker rule hands an attempt whose job is recorded to the next worker (same attempt, new
 *   claim, no failure counted, first start kept), while an attempt without one is retried as before;
 * - `GET /api/v1/runs/{run}/attempts` shows each attempt's job as `executor: {handle, state}` (only the
 *   documented fields), and the OpenAPI document describes it.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { waitFor, waitForDags } from '../helpers/run-rows.ts'
import { testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { claimAttempt, heartbeat, recordExecutorHandle, recordExecutorState } from '../../engine/store/attempts.ts'
import { cancelRun } from '../../engine/store/control.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'

test('job handles: fenced, one per attempt, handed on by the lost-worker rule, shown by the attempts API', { timeout: 120_000 }, async (t) => {
  const engine = await startTestEngine(t, {
    scheduler: { loopMs: 100, syncEveryMs: 200, lostAfterMs: 4000 },
    dags: { 'one.yaml': 'dag: one\nmax_active_runs: 4\ntasks:\n  fit: { operator: noop, retries: 3, retry_delay: 100ms }\n' },
  })
  await waitForDags(engine.db, ['one'])
  const queued = async (runId: string) => waitFor(`run ${runId}'s attempt to be queued`, async () => claimAttempt(engine.db, { runId, taskId: 'fit', attempt: 1 }, 'test-worker', new Date()))

  // Fenced and unique.
  const slurmJob = { executor: 'slurm', cluster: 'hpc', jobId: '4242', jobName: 'cairn-b' }
  const first = await engine.trigger('one')
  const claim = await queued(first)
  // This claim's holder is alive: it heartbeats (the scheduler's lost-worker rule leaves it alone).
  const beating = setInterval(() => void heartbeat(engine.db, [claim.claimId], new Date()).catch(() => undefined), 100)
  t.after(() => clearInterval(beating))
  assert.equal(claim.executorHandle, null)
  // The job's name before sbatch (no id yet): another name may replace it while no id is known; an id is
  // taken only for the name recorded.
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, { ...slurmJob, jobId: '', jobName: 'cairn-a' }), true)
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, { ...slurmJob, jobId: '', jobName: 'cairn-b' }), true)
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, { ...slurmJob, jobName: 'cairn-a' }), false, 'an id for a job of another name is refused')
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, slurmJob), true)
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, { ...slurmJob, jobId: '' }), false, 'once the id is recorded the name alone is refused')
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, slurmJob), true, 'the same job again is fine')
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, { ...slurmJob, jobId: '4243' }), false, 'a second job for the attempt is refused')
  const shown = { executor: 'slurm' as const, job_id: '4242', state: 'RUNNING', ranks: [{ rank: 0, host: 'n1' }, { rank: 1, host: 'n2' }], updated_at: new Date().toISOString() }
  assert.equal(await recordExecutorState(engine.db, claim.claimId, shown), true)

  // The attempts API shows the job; fields beyond the documented ones stay out.
  const { app, base } = await startTestWeb({ db: engine.db, log: testLogger() })
  t.after(() => app.close())
  const viewer = { authorization: `Bearer ${(await createToken(engine.db, { name: 'looker', role: 'viewer' }))!.token}` }
  await engine.db.query(`UPDATE cairn.attempt SET executor_handle = executor_handle || '{"extra": "not shown"}' WHERE claim_id = $1`, [claim.claimId])
  const attempts = (await rawRequest(base, 'GET', `/api/v1/runs/${first}/attempts`, { headers: viewer })).json().attempts as { executor: unknown }[]
  assert.deepEqual(attempts.map((a) => a.executor), [{ handle: slurmJob, state: shown }])
  const openapi = (await rawRequest(base, 'GET', '/api/v1/openapi.json', { headers: viewer })).json() as { paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: { properties: { attempts: { items: { properties: Record<string, { properties?: Record<string, unknown> }> } } } } }> }> } }> }
  const attemptSchema = openapi.paths['/api/v1/runs/{run}/attempts']!.get.responses['200']!.content['application/json']!.schema.properties.attempts.items
  assert.deepEqual(Object.keys(attemptSchema.properties.executor!.properties!).sort(), ['handle', 'state'])

  // Cancelled: no job may be recorded for it any more; its holder still tells the job's final state.
  await engine.db.tx((q) => cancelRun(q, first, new Date(), 'test'))
  clearInterval(beating)
  assert.equal((await engine.db.query<{ state: string }>(`SELECT state FROM cairn.attempt WHERE claim_id = $1`, [claim.claimId])).rows[0]?.state, 'cancelled')
  assert.equal(await recordExecutorHandle(engine.db, claim.claimId, slurmJob), false)
  assert.equal(await recordExecutorState(engine.db, claim.claimId, { ...shown, state: 'CANCELLED' }), true)

  // Lost with a recorded job: the same attempt is queued again for another worker, nothing counted as failed.
  const handedOn = await engine.trigger('one')
  const lostClaim = await queued(handedOn)
  assert.equal(await recordExecutorHandle(engine.db, lostClaim.claimId, slurmJob), true)
  const firstStart = (await engine.db.query<{ started_at: Date }>(`SELECT started_at FROM cairn.attempt WHERE claim_id = $1`, [lostClaim.claimId])).rows[0]!.started_at
  // Lost without one: retried as a new attempt.
  const retried = await engine.trigger('one')
  await queued(retried)
  const again = await queued(handedOn)
  assert.notEqual(again.claimId, lostClaim.claimId, 'a new claim')
  assert.equal(again.attempt, 1, 'the same attempt')
  assert.deepEqual(again.executorHandle, slurmJob, 'the new holder learns the job to re-attach to')
  assert.equal(again.startedAt.getTime(), firstStart.getTime(), 'its timeout counts from the first start')
  const { rows: ti } = await engine.db.query<{ failures: number; attempt: number }>(`SELECT failures, attempt FROM cairn.task_instance WHERE run_id = $1`, [handedOn])
  assert.deepEqual(ti, [{ failures: 0, attempt: 1 }])
  await waitFor('the attempt without a job to be retried', async () => {
    const { rows } = await engine.db.query<{ attempt: number; state: string }>(`SELECT attempt, state FROM cairn.attempt WHERE run_id = $1 ORDER BY attempt`, [retried])
    return rows.length === 2 && rows[0]!.state === 'lost' ? true : undefined
  })
})
