/**
 * An http(s) source, downloaded into the attempt's folder before it is read like a file: streamed
 * to disk (never held in memory), refused past `max_bytes`, each try limited to `timeout`, and
 * retried with a growing delay on 5xx, 408, 429, timeouts and connection errors. Header values
 * (rendered, possibly secrets) are sent and never logged; messages name the URL without its
 * credentials or query string.
 */
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseDuration } from '../../engine/time/duration.ts'
import { dataInvalid, errorText, failure, invalid, unreachable } from '../../engine/data/reader/failure.ts'
import type { ReadFailure } from '../../engine/data/reader/failure.ts'
import type { OperatorLogger } from '../define.ts'

export const HTTP_DEFAULTS = { maxBytes: 1024 ** 3, timeout: '5m', retries: 3, firstDelayMs: 500, maxDelayMs: 30_000 } as const

export interface HttpSource {
  url: string
  headers?: Record<string, string>
  max_bytes?: number
  timeout?: string
  retries?: number
}

/** The URL as messages and the version's details show it: no user, password, query or fragment. */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return '(an unparsable URL)'
  }
}

class TooLarge extends Error {}

export async function download(source: HttpSource, target: string, signal: AbortSignal, log: OperatorLogger, delays: { firstDelayMs?: number } = {}): Promise<{ bytes: number } | ReadFailure> {
  const shown = publicUrl(source.url)
  const maxBytes = source.max_bytes ?? HTTP_DEFAULTS.maxBytes
  const timeoutMs = parseDuration(source.timeout ?? HTTP_DEFAULTS.timeout)
  if (timeoutMs === undefined || timeoutMs <= 0) return invalid(`source.timeout ${JSON.stringify(source.timeout)} is not a duration such as 30s or 5m`)
  const tries = (source.retries ?? HTTP_DEFAULTS.retries) + 1
  let delay = delays.firstDelayMs ?? HTTP_DEFAULTS.firstDelayMs
  let last = ''
  for (let attempt = 1; attempt <= tries; attempt++) {
    if (signal.aborted) return failure('cancelled', false, 'aborted')
    const outcome = await tryOnce(source, target, signal, timeoutMs, maxBytes, shown)
    if ('bytes' in outcome) {
      log.info(`downloaded ${outcome.bytes} bytes from ${shown}${attempt > 1 ? ` (try ${attempt})` : ''}`)
      return outcome
    }
    await rm(target, { force: true })
    if (outcome.final) return outcome.final
    last = outcome.retryReason
    if (attempt < tries) {
      log.warn(`${shown}: ${last}; trying again in ${delay} ms (try ${attempt + 1} of ${tries})`)
      const slept = await sleep(delay, signal)
      if (!slept) return failure('cancelled', false, 'aborted')
      delay = Math.min(delay * 2, HTTP_DEFAULTS.maxDelayMs)
    }
  }
  return unreachable(`${shown}: ${last} (gave up after ${tries} tr${tries === 1 ? 'y' : 'ies'})`)
}

type TryOutcome = { bytes: number } | { final?: ReadFailure; retryReason: string }

async function tryOnce(source: HttpSource, target: string, signal: AbortSignal, timeoutMs: number, maxBytes: number, shown: string): Promise<TryOutcome> {
  const timeout = AbortSignal.timeout(timeoutMs)
  const both = AbortSignal.any([signal, timeout])
  try {
    const { url, headers } = withoutCredentials(source.url, source.headers ?? {})
    const response = await fetch(url, { headers, signal: both, redirect: 'follow' })
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined)
      const reason = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
      if (response.status >= 500 || response.status === 408 || response.status === 429) return { retryReason: reason }
      return { final: invalid(`${shown} answered ${reason}; nothing was published`), retryReason: reason }
    }
    const declared = Number(response.headers.get('content-length') ?? NaN)
    if (Number.isFinite(declared) && declared > maxBytes) {
      await response.body?.cancel().catch(() => undefined)
      return { final: tooLarge(shown, maxBytes, declared), retryReason: 'too large' }
    }
    let bytes = 0
    const body = response.body ? Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>) : Readable.from([])
    const counted = body.map((chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBytes) throw new TooLarge()
      return chunk
    })
    await pipeline(counted, createWriteStream(target), { signal: both })
    return { bytes }
  } catch (error) {
    if (error instanceof TooLarge || (error as { cause?: unknown }).cause instanceof TooLarge) return { final: tooLarge(shown, maxBytes), retryReason: 'too large' }
    if (signal.aborted) return { final: failure('cancelled', false, 'aborted'), retryReason: 'aborted' }
    if (timeout.aborted) return { retryReason: `no complete answer within ${source.timeout ?? HTTP_DEFAULTS.timeout}` }
    return { retryReason: connectionError(error) }
  }
}

/** fetch refuses URLs with user:password: they become a Basic Authorization header (unless one is given). */
function withoutCredentials(raw: string, headers: Record<string, string>): { url: string; headers: Record<string, string> } {
  const url = new URL(raw)
  if (url.username === '' && url.password === '') return { url: raw, headers }
  const basic = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')
  url.username = ''
  url.password = ''
  const given = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')
  return { url: url.toString(), headers: given ? headers : { ...headers, Authorization: `Basic ${basic}` } }
}

function tooLarge(shown: string, maxBytes: number, declared?: number): ReadFailure {
  return dataInvalid(`${shown}: the body is larger than max_bytes (${maxBytes} bytes${declared !== undefined ? `; it announced ${declared}` : ''}); nothing was published`)
}

function connectionError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ? `connection failed (${cause.code})` : `connection failed (${cause?.message ?? errorText(error)})`
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false)
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop)
      resolve(true)
    }, ms)
    const stop = () => {
      clearTimeout(timer)
      resolve(false)
    }
    signal.addEventListener('abort', stop, { once: true })
  })
}
