/**
 * The registry's lifecycle on real Postgres, through the registry, the CLI (`cairn models stage`)
 * and HTTP (`POST /api/v1/models/{name}/versions/{version}/stage`): promoting archives the previous
 * production version, a second canary is refused with a message that names the canary, traffic
 * shares follow the stages, every change is audited with its actor (OS user, token, user), and a
 * person moving the canary out of a rollout ends that rollout in the rollout history.
 */
import test from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { createModels } from '../../engine/models/registry.ts'
import { StageConflictError } from '../../engine/models/stages.ts'
import { createRollouts } from '../../engine/models/rollouts.ts'
import { createToken } from '../../engine/web/auth/tokens.ts'
import { startCliDeployment } from '../helpers/cli-deployment.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'

test('models lifecycle: stage through the registry, the CLI and HTTP; one production, one canary; audit; rollout history', { timeout: 180_000 }, async (t) => {
  const { dir, dataDir: data, db, log, cairn } = await startCliDeployment(t)
  const models = createModels({ db, dir: data, producer: { kind: 'actor', actor: 'test' } })
  for (const n of [1, 2, 3, 4]) {
    writeFileSync(join(dir, `m${n}.onnx`), `model ${n}`)
    await models.register({ name: 'churn', file: join(dir, `m${n}.onnx`) })
  }
  const stages = async () => (await models.versions('churn')).map((v) => [v.version, v.stage, v.trafficShare])

  // Registry: production, then a promotion archives it.
  const first = await models.stage('churn', 1, 'production', { user: 'alice' })
  assert.deepEqual([first?.from, first?.archived], ['candidate', null])
  const second = await models.stage('churn', 2, 'production', { user: 'alice' })
  assert.deepEqual([second?.from, second?.archived], ['candidate', 1])
  assert.deepEqual(await stages(), [[1, 'archived', 0], [2, 'production', 1], [3, 'candidate', 0], [4, 'candidate', 0]])
  assert.equal(await models.stage('churn', 9, 'production', { user: 'alice' }), undefined)

  // CLI: canary, then a second canary refused with a clear message (exit 1), nothing changed.
  const canary = await cairn('models', 'stage', 'churn', '3', 'canary')
  assert.equal(canary.code, 0, canary.stderr)
  assert.match(canary.stderr, /version 3: candidate -> canary/)
  const refused = await cairn('models', 'stage', 'churn', '4', 'canary')
  assert.equal(refused.code, 1, refused.stderr)
  assert.match(refused.stderr, /model churn already has a canary \(version 3\); a model has one canary at a time/)
  await assert.rejects(models.stage('churn', 4, 'canary', { user: 'bob' }), (e: unknown) => e instanceof StageConflictError)
  // The database is the last word: a writer that skips the registry is refused too.
  await assert.rejects(db.query(`UPDATE cairn.model_version SET stage = 'canary' WHERE model = 'churn' AND version = 4`), (e: { code?: string }) => e.code === '23505')
  assert.deepEqual(await stages(), [[1, 'archived', 0], [2, 'production', 1], [3, 'canary', 0], [4, 'candidate', 0]])
  const usage = await cairn('models', 'stage', 'churn', '3', 'staging')
  assert.equal(usage.code, 2)
  assert.match(usage.stderr, /STAGE must be one of candidate, canary, production, archived/)
  const unknown = await cairn('models', 'stage', 'churn', '7', 'archived')
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /model churn has no version 7 \(the latest is 4\)/)

  // A rollout of version 3 at 10 %: production has the rest.
  const rollouts = createRollouts({ db, producer: { kind: 'actor', actor: 'test' } })
  const plan = { steps: [10, 100], stepDurationMs: 1000, analysis: { minRequests: 1, maxErrorRate: 0.1, maxP99LatencyMs: 100 }, onFailure: 'rollback' as const }
  const rollout = await rollouts.begin('churn', 3, plan, new Date())
  await rollouts.startStep(rollout, 0, 10, new Date())
  assert.deepEqual((await stages()).slice(1, 3), [[2, 'production', 0.9], [3, 'canary', 0.1]])

  // HTTP: viewers may not; an operator token's change is audited with the token; 409 for a second canary.
  const operator = (await createToken(db, { name: 'deployer', role: 'operator' }))!.token
  const viewer = (await createToken(db, { name: 'reader', role: 'viewer' }))!.token
  const { app, base } = await startTestWeb({ db, log, data: { dir: data } })
  t.after(() => app.close())
  const post = (token: string | undefined, path: string, body: unknown) => rawRequest(base, 'POST', path, { headers: token ? { authorization: `Bearer ${token}` } : {}, body })
  assert.equal((await post(undefined, '/api/v1/models/churn/versions/4/stage', { stage: 'canary' })).status, 401)
  assert.equal((await post(viewer, '/api/v1/models/churn/versions/4/stage', { stage: 'canary' })).status, 403)
  const conflict = await post(operator, '/api/v1/models/churn/versions/4/stage', { stage: 'canary' })
  assert.equal(conflict.status, 409, conflict.body)
  assert.deepEqual(conflict.json(), { error: 'stage_conflict', message: 'model churn already has a canary (version 3); a model has one canary at a time: promote it, or move it to candidate or archived, first' })
  assert.equal((await post(operator, '/api/v1/models/churn/versions/4/stage', { stage: 'staging' })).status, 400)
  assert.equal((await post(operator, '/api/v1/models/churn/versions/40/stage', { stage: 'archived' })).status, 404)
  // The person takes the canary back out: traffic returns to production, the rollout ends.
  const back = await post(operator, '/api/v1/models/churn/versions/3/stage', { stage: 'candidate' })
  assert.equal(back.status, 200, back.body)
  assert.deepEqual([back.json().previous_stage, back.json().version.stage, back.json().version.traffic_share], ['canary', 'candidate', 0])
  assert.deepEqual((await stages()).slice(1, 3), [[2, 'production', 1], [3, 'candidate', 0]])
  const promoted = await post(operator, '/api/v1/models/churn/versions/4/stage', { stage: 'production' })
  assert.deepEqual([promoted.status, promoted.json().archived], [200, 2])

  const shown = await rawRequest(base, 'GET', '/api/v1/models/churn', { headers: { authorization: `Bearer ${viewer}` } })
  assert.equal(shown.status, 200, shown.body)
  const body = shown.json()
  assert.equal(body.rollouts.length, 1)
  assert.deepEqual([body.rollouts[0].version, body.rollouts[0].status, body.rollouts[0].reason], [3, 'rolled_back', 'version moved to candidate by token deployer'])
  assert.deepEqual(body.rollouts[0].steps.map((s: Record<string, unknown>) => [s.percent, s.passed]), [[10, null]])
  assert.deepEqual(body.rollouts[0].plan, { steps: [10, 100], step_duration_ms: 1000, analysis: { min_requests: 1, max_error_rate: 0.1, max_p99_latency_ms: 100 }, on_failure: 'rollback' })
  const me = userInfo().username
  const changes = body.audit.filter((a: { from_stage: string | null }) => a.from_stage !== null).map((a: Record<string, unknown>) => [a.version, a.from_stage, a.to_stage, a.actor, a.traffic_share])
  assert.deepEqual(changes, [
    [1, 'candidate', 'production', { user: 'alice' }, 1],
    [1, 'production', 'archived', { user: 'alice' }, 0],
    [2, 'candidate', 'production', { user: 'alice' }, 1],
    [3, 'candidate', 'canary', { user: me }, 0],
    [3, 'canary', 'canary', { user: 'test' }, 0.1],
    [3, 'canary', 'candidate', { token: 'deployer' }, 0],
    [2, 'production', 'archived', { token: 'deployer' }, 0],
    [4, 'candidate', 'production', { token: 'deployer' }, 1],
  ])
  // register --stage production: registered and promoted, the previous production archived.
  writeFileSync(join(dir, 'm5.onnx'), 'model 5')
  const registered = await cairn('models', 'register', 'churn', 'm5.onnx', '--stage', 'production')
  assert.equal(registered.code, 0, registered.stderr)
  assert.equal(registered.stdout.trim().split('\n').at(-1), '5')
  assert.deepEqual((await stages()).slice(3), [[4, 'archived', 0], [5, 'production', 1]])
  const openapi = (await rawRequest(base, 'GET', '/api/v1/openapi.json', { headers: { authorization: `Bearer ${viewer}` } })).json()
  assert.ok(openapi.paths['/api/v1/models/{name}/versions/{version}/stage']?.post, 'the stage route is in the OpenAPI document')
})
