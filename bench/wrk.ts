/**
 * wrk, a load generator in C, for the HTTP benchmarks when it is installed (`apt-get install wrk`).
 * On a 2-core machine the load generator's CPU is taken from the server: wrk takes a few microseconds
 * per request where autocannon takes tens, so its figures show what a server gives when its client
 * costs next to nothing. One wrk thread; latencies from wrk's own histogram (1 us steps).
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface WrkFigures {
  requests: number
  /** Requests per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  /** Answers with a status of 400 or more, and connection errors and timeouts. */
  bad: number
}

export interface WrkRun {
  url: string
  connections: number
  seconds: number
  /** Where the Lua script is written. */
  dir: string
  /** Lua that shapes the requests (wrk.method, wrk.body, wrk.headers, or a `request` function). */
  lua: readonly string[]
  /** Runs wrk on this CPU only (taskset). */
  cpu?: number
}

/** Whether wrk can be run (it prints its version and usage with exit status 1). */
export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (error) {
    return (error as { status?: number }).status === 1
  }
}

/** Runs wrk without blocking this process (the servers measured may run in its event loop). */
export async function runWrk(run: WrkRun): Promise<WrkFigures> {
  const script = join(run.dir, 'wrk.lua')
  writeFileSync(script, [
    ...run.lua,
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("\\nRESULT %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))',
    'end',
  ].join('\n'))
  const wrk = ['wrk', '-t1', `-c${run.connections}`, `-d${run.seconds}s`, '-s', script, run.url]
  const child = run.cpu === undefined ? spawn(wrk[0]!, wrk.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn('taskset', ['-c', String(run.cpu), ...wrk], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')))
  await once(child, 'exit')
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out)
  if (!m || m[1] === '0') throw new Error(`wrk gave no result: ${out}`)
  const [requests, micros, p50, p99, bad] = m.slice(1).map(Number) as [number, number, number, number, number]
  return { requests, rps: requests / (micros / 1e6), p50Ms: p50 / 1000, p99Ms: p99 / 1000, bad }
}
