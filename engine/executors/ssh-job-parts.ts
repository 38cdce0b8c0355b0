/**
 * Small pieces the ssh executor's start (ssh.ts) and re-attach (ssh-reattach.ts) share: host labels, the
 * line reader of rank channels, the rendezvous port, and the shapes of an ended job.
 */
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import type { JobHandle, JobOutcome, RunningJob } from './executor.ts'
import type { SshConnection, SshHostSetting } from './ssh-connection.ts'

export function hostLabel(host: SshHostSetting): string {
  return (host.port ?? 22) === 22 ? host.host : `${host.host}:${host.port}`
}

/**
 * A port for rank 0's rendezvous (MASTER_PORT) that nothing on the first host listens on: random ports
 * of 20000-49999 asked in turn through the SSH connection (a daemon of the host, or another job's
 * rendezvous, may hold any of them). When the server cannot tell (forwarding not allowed), the random
 * port is used as it is.
 */
export async function freeRendezvousPort(connection: SshConnection, address: string, random: () => number = Math.random): Promise<number> {
  let port = 0
  for (let tries = 0; tries < 20; tries++) {
    port = 20_000 + Math.floor(random() * 30_000)
    if ((await connection.listening(address, port)) !== true) return port
  }
  return port
}

/** Longest line passed on whole; a longer one arrives in pieces of this size. */
const MAX_LINE = 64 * 1024

/** Splits a stream into lines (without the newline) and awaits onLine's promise before reading on. */
export async function readLines(stream: Readable, onLine: (line: string) => unknown): Promise<void> {
  const decoder = new StringDecoder('utf8')
  let rest = ''
  const emit = async (line: string) => {
    const result = onLine(line.endsWith('\r') ? line.slice(0, -1) : line)
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') await result
  }
  try {
    for await (const chunk of stream) {
      rest += decoder.write(chunk as Buffer)
      let newline: number
      while ((newline = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, newline)
        rest = rest.slice(newline + 1)
        await emit(line)
      }
      // A program that never writes a newline must not grow the buffer without bound.
      while (rest.length > MAX_LINE) {
        await emit(rest.slice(0, MAX_LINE))
        rest = rest.slice(MAX_LINE)
      }
    }
  } catch {
    // A channel torn down with its connection: the lines read so far were delivered.
  }
  rest += decoder.end()
  if (rest !== '') await emit(rest)
}

/** The state shown for a job that ended (Slurm's names). */
export function endedState(outcome: JobOutcome | { ok: false; kind: string }): string {
  if (outcome.ok) return 'COMPLETED'
  return outcome.kind === 'cancelled' ? 'CANCELLED' : outcome.kind === 'timeout' ? 'TIMEOUT' : 'FAILED'
}

export function failedJob(handle: JobHandle, outcome: JobOutcome): RunningJob {
  return { handle, done: Promise.resolve(outcome), cancel: async () => {} }
}
