/**
 * The thread that renders a task's templates (render-pool.ts is the other side). Secrets stay
 * lazy: a lookup is a synchronous round trip to the main thread, which owns the secret store and so
 * learns every value it hands out (for masking, even if this thread is then terminated).
 */
import { parentPort, receiveMessageOnPort } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import { renderTaskTemplates } from './render.ts'
import type { RenderBudget, RenderResult, TaskTemplates, TemplateVariables } from './render.ts'
import type { SecretStore } from '../secrets/secrets.ts'

export interface RenderJob {
  id: number
  templates: TaskTemplates
  variables: Omit<TemplateVariables, 'secrets'>
  budget: RenderBudget
  /** Secret lookups go out on this port; `ready[0]` turns 1 when the answer is on it. */
  secrets: MessagePort
  ready: SharedArrayBuffer
}

export type SecretAnswer = { value: string | undefined } | { error: string }

export type WorkerMessage = { kind: 'ready' } | { kind: 'done'; id: number; result: RenderResult }

/** A lookup never waits longer than this for the main thread (it answers from its event loop). */
const LOOKUP_TIMEOUT_MS = 10_000

function remoteSecrets(port: MessagePort, ready: Int32Array): SecretStore {
  return {
    get(name) {
      Atomics.store(ready, 0, 0)
      port.postMessage(name)
      if (Atomics.wait(ready, 0, 0, LOOKUP_TIMEOUT_MS) === 'timed-out') throw new Error(`looking up secret ${name} timed out`)
      const answer = receiveMessageOnPort(port)?.message as SecretAnswer | undefined
      if (!answer) throw new Error(`no answer for secret ${name}`)
      if ('error' in answer) throw new Error(answer.error)
      return answer.value
    },
  }
}

parentPort!.on('message', (job: RenderJob) => {
  const secrets = remoteSecrets(job.secrets, new Int32Array(job.ready))
  let result: RenderResult
  try {
    result = renderTaskTemplates(job.templates, { ...job.variables, secrets }, job.budget)
  } catch (error) {
    result = { ok: false, message: `rendering failed: ${error instanceof Error ? error.message : String(error)}`, secretValues: [] }
  }
  job.secrets.close()
  parentPort!.postMessage({ kind: 'done', id: job.id, result } satisfies WorkerMessage)
})
// Load the engine before saying ready, so a task's budget is not spent on starting the thread.
renderTaskTemplates(
  { params: { warm: '{{ task.id }}' } },
  {
    dag: { id: '' },
    run: { id: '', logical_date: '', data_interval_start: '', data_interval_end: '', is_latest: true },
    task: { id: 'warm', attempt: 0 },
    ds: '',
    ds_nodash: '',
    params: {},
    tasks: {},
    secrets: { get: () => undefined },
  },
)
parentPort!.postMessage({ kind: 'ready' } satisfies WorkerMessage)
