/**
 * Every trigger rule of SPEC section 3 against every combination of one or two upstream outcomes
 * (multisets over success, failed, skipped, upstream_failed), end to end: DAG files loaded by the
 * scheduler, runs in Postgres, tasks executed by real `cairn worker` processes.
 *
 * Per rule there are two DAGs: `clean` (combinations of success and skipped only, so the run must
 * succeed) and `mixed` (every combination with a failure, so the run must fail). Each DAG holds
 * upstream tasks forced to one outcome each and one `noop` target per combination with the rule
 * under test; targets that need the same outcome twice use two different upstream tasks.
 *
 * The expected states come from `oracle` below, written from the SPEC table, not from the engine.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestEngine } from '../helpers/engine.ts'
import { taskRows, waitForDags } from '../helpers/run-rows.ts'
import type { TaskRow } from '../helpers/run-rows.ts'

const RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'all_skipped',
  'one_success',
  'one_failed',
  'one_done',
  'none_failed',
  'none_failed_min_one_success',
  'none_skipped',
  'always',
] as const
type Rule = (typeof RULES)[number]

type Outcome = 'success' | 'failed' | 'skipped' | 'upstream_failed'
/** What a target ends as: a target that ran is a noop, so `success`. */
type TargetState = 'success' | 'skipped' | 'upstream_failed'

const isFailure = (o: Outcome): boolean => o === 'failed' || o === 'upstream_failed'

/**
 * The SPEC table, applied to the upstream outcomes in the order they became terminal. Only
 * `all_success` depends on the order: it becomes `upstream_failed` on a failure "else skipped once
 * any upstream is skipped", so whichever of a skip and a failure comes first decides. Every other
 * rule's final state depends only on the multiset. Where the "otherwise" column says "failed" it
 * is read as failed or upstream_failed, as Airflow does (and as the all_success row spells out).
 */
function oracle(rule: Rule, arrivals: readonly Outcome[]): TargetState {
  const some = (pred: (o: Outcome) => boolean): boolean => arrivals.some(pred)
  const every = (pred: (o: Outcome) => boolean): boolean => arrivals.every(pred)
  switch (rule) {
    case 'all_success': {
      const first = arrivals.find((o) => o !== 'success')
      if (first === undefined) return 'success'
      return first === 'skipped' ? 'skipped' : 'upstream_failed'
    }
    case 'all_failed':
      return every(isFailure) ? 'success' : 'skipped'
    case 'all_done':
      return 'success'
    case 'all_skipped':
      return every((o) => o === 'skipped') ? 'success' : 'skipped'
    case 'one_success':
      if (some((o) => o === 'success')) return 'success'
      return some(isFailure) ? 'upstream_failed' : 'skipped'
    case 'one_failed':
      return some(isFailure) ? 'success' : 'skipped'
    case 'one_done':
      return some((o) => o === 'success' || o === 'failed') ? 'success' : 'skipped'
    case 'none_failed':
      return some(isFailure) ? 'upstream_failed' : 'success'
    case 'none_failed_min_one_success':
      if (some(isFailure)) return 'upstream_failed'
      return some((o) => o === 'success') ? 'success' : 'skipped'
    case 'none_skipped':
      return some((o) => o === 'skipped') ? 'skipped' : 'success'
    case 'always':
      return 'success'
  }
}

/** Rules whose target may only start once every upstream is terminal (SPEC "runs when"). */
const WAITS_FOR_ALL: ReadonlySet<Rule> = new Set(['all_success', 'all_failed', 'all_done', 'all_skipped', 'none_failed', 'none_failed_min_one_success', 'none_skipped'])

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]]
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]))
}

/** Upstream tasks every DAG can draw from, each forced to one outcome. */
interface Upstream {
  id: string
  outcome: Outcome
  yaml: string
}

const shellTrue = 'operator: shell, retries: 0, params: { command: ["true"] }'
const shellFalse = 'operator: shell, retries: 0, params: { command: ["false"] }'
const UPSTREAMS: Record<string, Upstream> = Object.fromEntries(
  (
    [
      ['s1', 'success', `{ ${shellTrue} }`],
      ['s2', 'success', `{ ${shellTrue} }`],
      ['f1', 'failed', `{ ${shellFalse} }`],
      ['f2', 'failed', `{ ${shellFalse} }`],
      // `when` false skips a command that would succeed: ignoring `when` shows up as success.
      ['k1', 'skipped', `{ ${shellTrue}, when: "false" }`],
      ['k2', 'skipped', `{ ${shellTrue}, when: "false" }`],
      // upstream_failed: the default rule below a failed parent.
      ['pf', 'failed', `{ ${shellFalse} }`],
      ['u1', 'upstream_failed', '{ operator: noop, depends_on: pf }'],
      ['u2', 'upstream_failed', '{ operator: noop, depends_on: pf }'],
      // Ordered variants: k_late is skipped only after f1 and u1 are terminal; f_late and u_late
      // fail only after k1 was skipped.
      ['k_late', 'skipped', `{ ${shellTrue}, when: "false", depends_on: [f1, u1], trigger_rule: all_done }`],
      ['f_late', 'failed', `{ ${shellFalse}, depends_on: k1, trigger_rule: all_done }`],
      ['pf_late', 'failed', `{ ${shellFalse}, depends_on: k1, trigger_rule: all_done }`],
      ['u_late', 'upstream_failed', '{ operator: noop, depends_on: pf_late }'],
    ] as const
  ).map(([id, outcome, yaml]) => [id, { id, outcome, yaml }]),
)

interface Combination {
  /** Part of the target's task id. */
  key: string
  upstream: string[]
  /** Outcomes in every order they may arrive (one order for the ordered variants). */
  orders: Outcome[][]
}

const SHORT: Record<Outcome, string> = { success: 's', failed: 'f', skipped: 'k', upstream_failed: 'u' }
const POOL: Record<Outcome, string[]> = { success: ['s1', 's2'], failed: ['f1', 'f2'], skipped: ['k1', 'k2'], upstream_failed: ['u1', 'u2'] }
const OUTCOMES: readonly Outcome[] = ['success', 'failed', 'skipped', 'upstream_failed']

function combinations(): Combination[] {
  const multisets: Outcome[][] = []
  for (let i = 0; i < OUTCOMES.length; i++) {
    multisets.push([OUTCOMES[i]!])
    for (let j = i; j < OUTCOMES.length; j++) multisets.push([OUTCOMES[i]!, OUTCOMES[j]!])
  }
  const out: Combination[] = multisets.map((outcomes) => {
    const used: Record<Outcome, number> = { success: 0, failed: 0, skipped: 0, upstream_failed: 0 }
    return {
      key: outcomes.map((o) => SHORT[o]).join('_'),
      upstream: outcomes.map((o) => POOL[o][used[o]++]!),
      orders: permutations(outcomes),
    }
  })
  // A skip and a failure in a fixed order, for the rule that depends on the order.
  out.push(
    { key: 'k_then_f', upstream: ['k1', 'f_late'], orders: [['skipped', 'failed']] },
    { key: 'f_then_k', upstream: ['f1', 'k_late'], orders: [['failed', 'skipped']] },
    { key: 'k_then_u', upstream: ['k1', 'u_late'], orders: [['skipped', 'upstream_failed']] },
    { key: 'u_then_k', upstream: ['u1', 'k_late'], orders: [['upstream_failed', 'skipped']] },
  )
  return out
}

const COMBINATIONS = combinations()

interface DagPlan {
  dagId: string
  rule: Rule
  file: string
  yaml: string
  /** Upstream task id -> its forced outcome. */
  upstream: Map<string, Outcome>
  /** Target task id -> what it may end as, and its upstream. */
  targets: Map<string, { combination: Combination; possible: Set<TargetState> }>
  expectedRun: 'success' | 'failed'
}

/** Every task an upstream depends on, so a DAG holds exactly what its targets need. */
function closure(ids: Iterable<string>): string[] {
  const seen = new Set<string>()
  const visit = (id: string): void => {
    if (seen.has(id)) return
    seen.add(id)
    for (const dep of dependenciesOf(UPSTREAMS[id]!.yaml)) visit(dep)
  }
  for (const id of ids) visit(id)
  return Object.keys(UPSTREAMS).filter((id) => seen.has(id))
}

function dependenciesOf(yaml: string): string[] {
  const match = /depends_on: (\[[^\]]*\]|\w+)/.exec(yaml)
  if (!match) return []
  return match[1]!.replace(/[[\]]/g, '').split(',').map((s) => s.trim()).filter(Boolean)
}

function planDag(rule: Rule, kind: 'clean' | 'mixed'): DagPlan {
  const combos = COMBINATIONS.filter((c) => c.orders[0]!.every((o) => o === 'success' || o === 'skipped') === (kind === 'clean'))
  const upstreamIds = closure(combos.flatMap((c) => c.upstream))
  const dagId = `${kind}_${rule}`
  const lines = [`dag: ${dagId}`, 'max_active_tasks: 200', 'tasks:']
  const upstream = new Map<string, Outcome>()
  for (const id of upstreamIds) {
    lines.push(`  ${id}: ${UPSTREAMS[id]!.yaml}`)
    upstream.set(id, UPSTREAMS[id]!.outcome)
  }
  const targets: DagPlan['targets'] = new Map()
  for (const combination of combos) {
    const id = `t_${combination.key}`
    lines.push(`  ${id}: { operator: noop, trigger_rule: ${rule}, depends_on: [${combination.upstream.join(', ')}] }`)
    targets.set(id, { combination, possible: new Set(combination.orders.map((order) => oracle(rule, order))) })
  }
  // The run succeeds when every task ended in success or skipped, whichever way the races went.
  const finals: string[] = [...upstream.values(), ...[...targets.values()].flatMap((t) => [...t.possible])]
  const expectedRun = finals.every((s) => s === 'success' || s === 'skipped') ? 'success' : 'failed'
  return { dagId, rule, file: `${dagId}.yaml`, yaml: `${lines.join('\n')}\n`, upstream, targets, expectedRun }
}

test('the oracle is the SPEC table (spot checks written by hand)', () => {
  assert.equal(oracle('all_success', ['success', 'success']), 'success')
  assert.equal(oracle('all_success', ['skipped', 'failed']), 'skipped')
  assert.equal(oracle('all_success', ['failed', 'skipped']), 'upstream_failed')
  assert.equal(oracle('all_failed', ['upstream_failed', 'failed']), 'success')
  assert.equal(oracle('all_skipped', ['skipped', 'success']), 'skipped')
  assert.equal(oracle('one_success', ['skipped', 'skipped']), 'skipped')
  assert.equal(oracle('one_success', ['skipped', 'upstream_failed']), 'upstream_failed')
  assert.equal(oracle('one_done', ['upstream_failed', 'skipped']), 'skipped')
  assert.equal(oracle('one_done', ['failed']), 'success')
  assert.equal(oracle('none_failed', ['skipped', 'skipped']), 'success')
  assert.equal(oracle('none_failed_min_one_success', ['skipped', 'skipped']), 'skipped')
  assert.equal(oracle('none_skipped', ['failed', 'upstream_failed']), 'success')
  assert.equal(COMBINATIONS.length, 4 + 10 + 4)
})

test('every trigger rule against every combination of upstream outcomes, through real worker processes', async (t) => {
  const plans = RULES.flatMap((rule) => [planDag(rule, 'clean'), planDag(rule, 'mixed')])
  const engine = await startTestEngine(t, { dags: Object.fromEntries(plans.map((p) => [p.file, p.yaml])) })
  await waitForDags(engine.db, plans.map((p) => p.dagId))
  engine.spawnWorker({ slots: 8 })
  engine.spawnWorker({ slots: 8 })

  const started = Date.now()
  const runs = new Map<DagPlan, string>()
  for (const plan of plans) runs.set(plan, await engine.trigger(plan.dagId))
  const finished = await Promise.all(plans.map(async (plan) => [plan, await engine.waitForRun(runs.get(plan)!, 90_000)] as const))
  t.diagnostic(`${plans.length} runs, ${plans.reduce((n, p) => n + p.targets.size, 0)} targets, finished in ${Date.now() - started} ms`)

  const problems: string[] = []
  const lags: { lag: number; where: string }[] = []
  for (const [plan, runState] of finished) {
    const rows = await taskRows(engine.db, runs.get(plan)!)
    for (const [id, { combination }] of plan.targets) {
      const row = rows.get(id)!
      const decided = (row.queued_at ?? row.ended_at)?.getTime() ?? 0
      const last = Math.max(...combination.upstream.map((u) => rows.get(u)!.ended_at?.getTime() ?? 0))
      lags.push({ lag: decided - last, where: `${plan.dagId}.${id}` })
    }
    if (runState !== plan.expectedRun) problems.push(`${plan.dagId}: run ${runState}, expected ${plan.expectedRun}`)
    for (const [id, outcome] of plan.upstream) {
      const got = rows.get(id)?.state
      if (got !== outcome) problems.push(`${plan.dagId}.${id}: upstream forced to ${outcome} ended ${got}`)
    }
    for (const [id, { combination, possible }] of plan.targets) {
      const row = rows.get(id)
      const got = row?.state as TargetState | undefined
      const label = `${plan.dagId}.${id} (${plan.rule} over [${combination.upstream.map((u) => `${u}=${plan.upstream.get(u)}`).join(', ')}])`
      if (got === undefined || !possible.has(got)) {
        problems.push(`${label}: ended ${got}, expected ${[...possible].join(' or ')}`)
        continue
      }
      // A target that ran is a noop attempt; one that was settled never reached a worker.
      if (row!.attempt !== (got === 'success' ? 1 : 0)) problems.push(`${label}: ended ${got} after ${row!.attempt} attempts`)
      if (got === 'success') {
        const late = startedTooEarly(plan.rule, row!, combination.upstream.map((u) => rows.get(u)!))
        if (late) problems.push(`${label}: ${late}`)
      }
    }
  }
  lags.sort((a, b) => b.lag - a.lag)
  const attempts = await engine.db.query<{ wait: number; run: number }>(
    `SELECT max(extract(epoch FROM a.started_at - a.queued_at) * 1000)::int AS wait, max(extract(epoch FROM a.ended_at - a.started_at) * 1000)::int AS run FROM cairn.attempt a`,
  )
  t.diagnostic(`slowest dispatch (queued -> claimed) ${attempts.rows[0]!.wait} ms, slowest attempt ${attempts.rows[0]!.run} ms`)
  t.diagnostic(`slowest decisions after the last upstream ended: ${lags.slice(0, 3).map((l) => `${l.where} ${l.lag} ms`).join(', ')}`)
  assert.deepEqual(problems, [])
  // Decisions are taken in the transaction that records the last needed upstream result, not by
  // the scheduler's 10 s safety sweep (two upstreams finishing together once left joins waiting).
  assert.ok(lags[0]!.lag < 5000, `${lags[0]!.where} was decided ${lags[0]!.lag} ms after its last upstream ended`)
})

/** A rule that waits for every upstream must not have queued its target before the last one ended. */
function startedTooEarly(rule: Rule, target: TaskRow, upstream: TaskRow[]): string | undefined {
  if (!WAITS_FOR_ALL.has(rule)) return undefined
  const last = Math.max(...upstream.map((u) => u.ended_at?.getTime() ?? Number.POSITIVE_INFINITY))
  const queued = target.queued_at?.getTime() ?? Number.NEGATIVE_INFINITY
  return queued < last ? `queued at ${target.queued_at?.toISOString()} before its last upstream ended (${new Date(last).toISOString()})` : undefined
}

test('one_success, one_failed, one_done and always start without waiting for a slow upstream', async (t) => {
  // `slow` is still running when each target may already start (SPEC: "does not wait" / "immediately").
  const dag = `dag: no_wait
max_active_tasks: 20
tasks:
  slow: { operator: shell, retries: 0, params: { command: [sleep, "6"] } }
  ok: { ${shellTrue} }
  bad: { ${shellFalse} }
  t_one_success: { operator: noop, trigger_rule: one_success, depends_on: [ok, slow] }
  t_one_failed: { operator: noop, trigger_rule: one_failed, depends_on: [bad, slow] }
  t_one_done_ok: { operator: noop, trigger_rule: one_done, depends_on: [ok, slow] }
  t_one_done_bad: { operator: noop, trigger_rule: one_done, depends_on: [bad, slow] }
  t_always: { operator: noop, trigger_rule: always, depends_on: slow }
`
  const engine = await startTestEngine(t, { dags: { 'no_wait.yaml': dag } })
  await waitForDags(engine.db, ['no_wait'])
  engine.spawnWorker({ slots: 8 })
  const runId = await engine.trigger('no_wait')
  assert.equal(await engine.waitForRun(runId, 60_000), 'failed', JSON.stringify(await engine.taskStates(runId)))
  const rows = await taskRows(engine.db, runId)
  const slow = rows.get('slow')!
  assert.equal(slow.state, 'success')
  const problems: string[] = []
  for (const id of ['t_one_success', 't_one_failed', 't_one_done_ok', 't_one_done_bad', 't_always']) {
    const row = rows.get(id)!
    if (row.state !== 'success') problems.push(`${id} ended ${row.state}`)
    else if (row.ended_at!.getTime() >= slow.ended_at!.getTime()) problems.push(`${id} ended at ${row.ended_at!.toISOString()}, after slow (${slow.ended_at!.toISOString()})`)
  }
  assert.deepEqual(problems, [])
  t.diagnostic(`targets done ${Math.min(...['t_one_success', 't_one_failed', 't_always'].map((id) => slow.ended_at!.getTime() - rows.get(id)!.ended_at!.getTime()))} ms or more before slow ended`)
})
