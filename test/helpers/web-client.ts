/**
 * A small HTTP client for web tests, and the server they talk to. node:http sends the path exactly as given (fetch would resolve
 * `..` and `.` first), so tests can probe the server with any spelling of a path.
 */
import { request } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { createWebServer } from '../../engine/web/server.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'

export interface Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json<T = any>(): T
}

export interface RequestOptions {
  headers?: Record<string, string>
  /** Sent as JSON (with a JSON content type) unless it is a string. */
  body?: unknown
  /** Loopback address to send from (127.0.0.2, 127.0.0.3 ...), so a test can be several clients. */
  localAddress?: string
}

export function rawRequest(base: string, method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  const { hostname, port } = new URL(base)
  const headers: Record<string, string> = { ...options.headers }
  let payload: string | undefined
  if (options.body !== undefined) {
    payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path, headers, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => JSON.parse(body),
        }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

export interface SseEvent {
  event: string
  id?: string
  data: string
}

/** Reads a server-sent event stream to its end (or until `timeoutMs`), returning every event and the raw text. */
export function readEventStream(base: string, path: string, headers: Record<string, string>, timeoutMs = 30_000): Promise<{ status: number; contentType: string | undefined; events: SseEvent[]; raw: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method: 'GET', path, headers }, (res) => {
      let raw = ''
      const timer = setTimeout(() => {
        req.destroy()
        reject(new Error(`event stream ${path} did not end within ${timeoutMs} ms; got:\n${raw}`))
      }, timeoutMs)
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (raw += chunk))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], events: parseEvents(raw), raw })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

export function parseEvents(raw: string): SseEvent[] {
  const events: SseEvent[] = []
  for (const block of raw.split('\n\n')) {
    let event = 'message'
    let id: string | undefined
    const data: string[] = []
    let any = false
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'id') id = value
      else if (field === 'data') data.push(value)
      else continue
      any = true
    }
    if (any && data.length > 0) events.push({ event, ...(id !== undefined ? { id } : {}), data: data.join('\n') })
  }
  return events
}

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses Prometheus text format into samples (comments skipped); throws on a line it cannot read. */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const m of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const value = match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : Number(match[3])
    if (Number.isNaN(value) && match[3] !== 'NaN') throw new Error(`bad value in: ${line}`)
    samples.push({ name: match[1]!, labels, value })
  }
  return { samples, types }
}

/**
 * Reads a server-sent event stream that does not end by itself, until `done(events)` says so (or
 * `timeoutMs`), then closes it. `onEvent` runs for each event as it arrives (e.g. to cause the next one).
 */
export function collectEvents(
  base: string,
  path: string,
  headers: Record<string, string>,
  options: { done(events: SseEvent[]): boolean; onEvent?(event: SseEvent): void; timeoutMs?: number },
): Promise<{ status: number; events: SseEvent[]; raw: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method: 'GET', path, headers }, (res) => {
      let raw = ''
      let seen = 0
      const finish = (error?: Error): void => {
        clearTimeout(timer)
        req.destroy()
        if (error) reject(error)
        else resolve({ status: res.statusCode ?? 0, events: parseEvents(raw), raw })
      }
      const timer = setTimeout(() => finish(new Error(`event stream ${path}: not done within ${options.timeoutMs ?? 30_000} ms; got:\n${raw}`)), options.timeoutMs ?? 30_000)
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        raw += chunk
        const events = parseEvents(raw.slice(0, raw.lastIndexOf('\n\n') + 2))
        for (const event of events.slice(seen)) options.onEvent?.(event)
        seen = events.length
        if (options.done(events)) finish()
      })
      res.on('end', () => finish(res.statusCode === 200 ? new Error(`event stream ${path} ended early; got:\n${raw}`) : undefined))
    })
    req.on('error', reject)
    req.end()
  })
}

export interface OpenStream {
  status: number
  /** The events received so far. */
  events(): SseEvent[]
  /** Resolves when the server ends the stream, with every event it sent. */
  ended: Promise<SseEvent[]>
  close(): void
}

/** Opens a server-sent event stream and resolves once the response headers arrived; the stream stays open until the server ends it or `close()`. */
export function openStream(base: string, path: string, headers: Record<string, string>): Promise<OpenStream> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method: 'GET', path, headers }, (res) => {
      let raw = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (raw += chunk))
      const ended = new Promise<SseEvent[]>((done) => res.on('close', () => done(parseEvents(raw))))
      resolve({ status: res.statusCode ?? 0, events: () => parseEvents(raw.slice(0, raw.lastIndexOf('\n\n') + 2)), ended, close: () => req.destroy() })
    })
    req.on('error', reject)
    req.end()
  })
}

/** A web server for tests on a free loopback port; `base` is its http://127.0.0.1:PORT. Closing it is the caller's. */
export async function startTestWeb(options: WebServerOptions): Promise<{ app: FastifyInstance; base: string }> {
  const app = await createWebServer(options)
  try {
    await app.listen({ port: 0, host: '127.0.0.1' })
  } catch (error) {
    await app.close()
    throw error
  }
  const address = app.server.address()
  if (!address || typeof address !== 'object') throw new Error('the web server has no TCP address')
  return { app, base: `http://127.0.0.1:${address.port}` }
}
