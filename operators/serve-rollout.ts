import { setTimeout as sleep } from 'node:timers/promises'
import paramsSchema from '../schemas/operators/serve.rollout.params.schema.json' with { type: 'json' }
import { parseDuration } from '../engine/time/duration.ts'
import { unknownModelServerMessage } from '../engine/config/data-settings.ts'
import { decideRollout } from '../engine/models/rollout-plan.ts'
import type { RolloutPlan, ServingFigures } from '../engine/models/rollout-plan.ts'
import type { Rollouts } from '../engine/models/rollouts.ts'
import { abortedResult, defineOperator, noDataServicesResult } from './define.ts'
import type { OperatorContext, OperatorResult } from './define.ts'

interface Params {
  model_name: string
  version: number | string
  server?: string
  steps: number[]
  step_duration: string
  analysis: { min_requests: number; max_error_rate: number; max_p99_latency_ms: number }
  on_failure?: 'rollback' | 'hold'
}

/** The longest the operator sleeps before reading the recorded state again (a person may move the version meanwhile). */
const MAX_SLEEP_MS = 1000

/**
 * Rolls a registered version out on the model servers (SPEC section 7): canary, then for each step
 * the share, step_duration and at least min_requests on the canary, the analysis of that window;
 * production after the last step, or back to candidate (hold: held at its share) when a step fails.
 * The decisions are engine/models/rollout-plan.ts; this loop reads the recorded state, applies the
 * decision and asks again, so a retried or re-run task resumes where the model is.
 */
export const serveRollout = defineOperator({
  type: 'serve.rollout',
  summary: 'registers a model version and rolls it out in canary steps with automatic rollback',
  paramsSchema,
  usesWorkdir: false,
  async run(raw: Record<string, unknown>, ctx: OperatorContext): Promise<OperatorResult> {
    const params = raw as unknown as Params
    if (!ctx.data) return noDataServicesResult()
    // Before anything is read or changed: a server cairn.yaml does not declare is a mistake in the DAG.
    const server = params.server ?? 'default'
    if (!ctx.data.modelServers.includes(server)) {
      return invalid(unknownModelServerMessage(server, ctx.data.modelServers))
    }
    const version = typeof params.version === 'number' ? params.version : /^[1-9][0-9]{0,9}$/.test(params.version.trim()) ? Number(params.version.trim()) : NaN
    if (!Number.isSafeInteger(version) || version < 1) return invalid(`version must be a version number; it rendered to ${JSON.stringify(params.version)}`)
    const stepDurationMs = parseDuration(params.step_duration)
    if (stepDurationMs === undefined) return invalid(`step_duration ${JSON.stringify(params.step_duration)} is not a duration (500ms, 30s, 5m, 2h, 1d)`)
    if (params.steps.some((p, i) => i > 0 && p <= params.steps[i - 1]!)) return invalid(`steps must grow (${params.steps.join(' -> ')})`)
    const plan: RolloutPlan = {
      steps: params.steps,
      stepDurationMs,
      analysis: { minRequests: params.analysis.min_requests, maxErrorRate: params.analysis.max_error_rate, maxP99LatencyMs: params.analysis.max_p99_latency_ms },
      onFailure: params.on_failure ?? 'rollback',
    }
    // Every model server on this database follows the same registry: the split reaches all of them, and the
    // analysis counts the canary's answers from every server process (docs/serving.md, `server`).
    if (server !== 'default') ctx.log.info(`server ${server}: the rollout moves the split every model server on this database follows, and each step counts the canary's figures from all of them`)
    try {
      return await rollOut(ctx.data.rollouts, params.model_name, version, plan, ctx)
    } catch (error) {
      // A cancel revokes the attempt's claim, so a change under way may be refused by the fence first.
      if (ctx.signal.aborted) return stopped(ctx.data.rollouts, params.model_name, version, ctx)
      throw error
    }
  },
})

function invalid(message: string): OperatorResult {
  return { ok: false, kind: 'invalid_params', retryable: false, message }
}

async function rollOut(rollouts: Rollouts, model: string, version: number, plan: RolloutPlan, ctx: OperatorContext): Promise<OperatorResult> {
  const name = `${model} version ${version}`
  let adopted = false
  /** The step (index) that has waited past its window for min_requests, if any. */
  let waitedStep = -1
  for (;;) {
    if (ctx.signal.aborted) return stopped(rollouts, model, version, ctx)
    const { state, rollout } = await rollouts.read(model, version)
    if (rollout && rollout.version === version && !adopted) {
      const taken = await rollouts.adopt(rollout.id, plan)
      if (!taken.ok) return { ok: false, kind: 'invalid_params', retryable: false, message: `cannot roll out ${name}: ${taken.message}` }
      ctx.log.info(`resuming the ${rollout.status} rollout of ${name} (started ${rollout.startedAt.toISOString()}, ${rollout.steps.length} step(s) recorded)`)
      adopted = true
      continue
    }
    let now = new Date()
    let action = decideRollout(plan, version, state, now)
    if (action.kind === 'measure') {
      const figures = await rollouts.figures(model, version, action.since)
      now = new Date()
      action = decideRollout(plan, version, state, now, figures)
    }
    switch (action.kind) {
      case 'refuse':
        return { ok: false, kind: 'invalid_params', retryable: false, message: `cannot roll out ${name}: ${action.message}` }
      case 'done':
        ctx.log.info(`${name} is already in production`)
        return { ok: true, outputs: { version, stage: 'production', rolled_back: false } }
      case 'begin':
        await rollouts.begin(model, version, plan, now)
        adopted = true
        ctx.log.info(`${name} is the canary; steps ${plan.steps.join(' -> ')} %, ${plan.stepDurationMs} ms each, at least ${plan.analysis.minRequests} requests per step`)
        break
      case 'start_step':
        await rollouts.startStep(rollout!, action.index, action.percent, now)
        ctx.log.info(`step ${action.index + 1}/${plan.steps.length}: ${action.percent} % of the traffic on ${name}`)
        break
      case 'wait':
        if (action.why === 'min_requests') {
          const index = rollout!.steps.length - 1
          if (waitedStep !== index) ctx.log.info(`step ${index + 1}: the window is over; waiting for ${plan.analysis.minRequests} requests on the canary`)
          waitedStep = index
        }
        await sleep(Math.min(action.ms, MAX_SLEEP_MS), undefined, { signal: ctx.signal }).catch(() => undefined)
        break
      case 'measure':
        // decideRollout asks for figures only once; with them it never asks again.
        throw new Error('rollout decision asked for figures it was given')
      case 'pass_step':
        await rollouts.passStep(rollout!, action.index, action.figures, now, waitedStep === action.index)
        ctx.log.info(`step ${action.index + 1} passed: ${describe(action.figures)}`)
        break
      case 'fail_step': {
        const stage = await rollouts.failStep(rollout!, action.index, action.figures, action.reason, plan.onFailure, now, waitedStep === action.index)
        const percent = rollout!.steps[action.index]?.percent ?? plan.steps[action.index]
        const what = plan.onFailure === 'hold' ? `held at ${percent} % for a person to decide` : 'rolled back: all traffic is on production again'
        ctx.log.error(`step ${action.index + 1} (${percent} %) failed: ${action.reason}; ${name} ${what}`)
        return {
          ok: false,
          kind: 'gate_not_met',
          retryable: false,
          message: `rollout of ${name} failed at step ${action.index + 1} (${percent} %): ${action.reason}; ${what}`,
          outputs: {
            version,
            stage,
            rolled_back: true,
            failed_step: action.index + 1,
            percent,
            requests: action.figures.requests,
            errors: action.figures.errors,
            error_rate: action.figures.errorRate,
            p99_ms: action.figures.p99Ms,
            reason: action.reason,
          },
        }
      }
      case 'promote':
        await rollouts.promote(rollout!, now)
        ctx.log.info(`${name} is production (every step passed)`)
        return { ok: true, outputs: { version, stage: 'production', rolled_back: false } }
    }
  }
}

/**
 * Cancelled or timed out: nobody watches the canary any more, so its traffic goes back to
 * production and the version to candidate. A worker shutting down leaves the rollout running: the
 * retry resumes it.
 */
async function stopped(rollouts: Rollouts, model: string, version: number, ctx: OperatorContext): Promise<OperatorResult> {
  const result = abortedResult(ctx.signal)
  if (result.kind === 'infrastructure') return result
  const { rollout } = await rollouts.read(model, version)
  if (rollout && rollout.version === version && rollout.status === 'running') {
    await rollouts.abandon(rollout, `the task was ${result.kind === 'timeout' ? 'stopped by its timeout' : 'cancelled'}`, new Date()).catch((error: unknown) => {
      ctx.log.warn(`could not roll back ${model} version ${version} after the task stopped: ${String(error)}`)
    })
    return { ...result, outputs: { version, stage: 'candidate', rolled_back: true } }
  }
  return result
}

function describe(f: ServingFigures): string {
  return `${f.requests} requests, ${f.errors} errors (rate ${f.errorRate ?? '-'}), p99 ${f.p99Ms === null ? '-' : `${Math.round(f.p99Ms * 100) / 100} ms`}`
}
