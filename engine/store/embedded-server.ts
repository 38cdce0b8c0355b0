/**
 * The postmaster process of the embedded Postgres: spawning it in its own process group, knowing when
 * it accepts connections (postmaster.pid says "ready"), and finding a port for it.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { RunAs } from './embedded-os-user.ts'

export class AddressInUseError extends Error {}

export interface SpawnOptions {
  /** Aborted: stop the server being started (immediate shutdown) and reject. */
  signal?: AbortSignal
  bin: string
  dataDir: string
  port: number
  runAs: RunAs | undefined
  ephemeral: boolean
  timeoutMs: number
  log: Logger
}

/** Spawns the postmaster in its own process group and resolves once postmaster.pid says "ready". */
export async function spawnServer({ bin, dataDir, port, runAs, ephemeral, timeoutMs, log, signal }: SpawnOptions): Promise<ChildProcess> {
  const args = ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=']
  if (ephemeral) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off')
  const child = spawn(bin, args, { ...runAs, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } })
  const tail: string[] = []
  let buffered = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (buffered + chunk.toString()).split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      if (!line) continue
      tail.push(line)
      if (tail.length > 40) tail.shift()
      const level = /\b(PANIC|FATAL|WARNING):/.exec(line)?.[1]
      if (level === 'PANIC') log.error(line)
      else if (level === 'WARNING' && !/shutdown|terminating/.test(line)) log.warn(line)
      else log.debug(line)
    }
  })
  let failure: Error | undefined
  child.once('error', (error) => (failure = error))
  child.once('exit', (code, signal) => {
    const output = tail.join('\n')
    failure ??= /could not bind|could not create any TCP\/IP sockets/.test(output)
      ? new AddressInUseError(`embedded Postgres could not listen on port ${port}:\n${output}`)
      : new Error(`embedded Postgres exited during start-up (${signal ?? `exit ${code}`}):\n${output}`)
  })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (failure) throw failure
    const pidFile = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')
    const lines = pidFile.split('\n')
    if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') break
    if (signal?.aborted) {
      child.kill('SIGQUIT')
      throw new Error('embedded Postgres start cancelled')
    }
    if (Date.now() > deadline) {
      child.kill('SIGQUIT')
      throw new Error(`embedded Postgres did not accept connections within ${timeoutMs} ms:\n${tail.join('\n')}`)
    }
    await sleep(10)
  }
  // The server must not keep the event loop alive: the owner decides when to stop, and exit stops it anyway.
  child.unref()
  ;(child.stderr as unknown as { unref?(): void } | null)?.unref?.()
  return child
}


export function isPortFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer()
    server.once('error', () => done(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => done(true)))
  })
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.once('error', fail)
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))))
    })
  })
}

