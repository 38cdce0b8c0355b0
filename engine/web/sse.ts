/**
 * A server-sent event stream on a hijacked reply: the headers, masked JSON events, keepalive comments,
 * back-pressure, and one `closed` signal for "the client left, the server is closing, or the caller's
 * credential stopped being valid". The last is checked by the credential watch (auth/credential-watch.ts):
 * a stream whose token is revoked or expired, or whose session ends or whose user is disabled, gets
 * `event: unauthorized` and is closed.
 */
import { once } from 'node:events'
import type { FastifyReply } from 'fastify'
import type { WebContext } from './context.ts'

const KEEPALIVE_MS = 15_000

export interface EventStream {
  /** Sends one event; its data is JSON, masked with the secrets the web process knows. */
  event(name: string, data: unknown, id?: string | number): Promise<void>
  /** Aborted when the client disconnects or the server closes. */
  readonly closed: AbortSignal
  end(): void
}

export function openEventStream(ctx: WebContext, reply: FastifyReply, options: { retryMs?: number } = {}): EventStream {
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
  })
  const closing = new AbortController()
  const stop = (): void => closing.abort()
  res.on('close', stop)
  ctx.closing.addEventListener('abort', stop, { once: true })
  const keepalive = setInterval(() => void send(': keepalive\n\n'), KEEPALIVE_MS)
  const principal = reply.request.principal
  const unwatch = principal
    ? ctx.credentials.watch(principal, () => {
        void send(`event: unauthorized\ndata: ${JSON.stringify({ message: 'the credential of this stream was revoked, expired or disabled; log in again' })}\n\n`).finally(end)
      })
    : undefined
  closing.signal.addEventListener('abort', () => {
    clearInterval(keepalive)
    unwatch?.()
    ctx.closing.removeEventListener('abort', stop)
    res.off('close', stop)
  }, { once: true })

  async function send(text: string): Promise<void> {
    if (closing.signal.aborted || res.destroyed) return
    if (!res.write(text)) await Promise.race([once(res, 'drain'), once(res, 'close')]).catch(() => undefined)
  }
  void send(`retry: ${options.retryMs ?? 2000}\n\n`)

  function end(): void {
    stop()
    if (!res.destroyed) res.end()
  }

  return {
    event: (name, data, id) => send(`event: ${name}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(ctx.masker().deep(data))}\n\n`),
    closed: closing.signal,
    end,
  }
}
