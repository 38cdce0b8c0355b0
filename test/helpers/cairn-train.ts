/** Runs `cairn-train` as a real process (one rank), collecting its output and exit code. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import onnxProto from 'onnx-proto'

const BIN = fileURLToPath(new URL('../../bin/cairn-train.js', import.meta.url))

export interface RankRun {
  child: ChildProcess
  /** stdout + stderr so far. */
  output(): string
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>
}

export function startRank(args: string[], env: Record<string, string> = {}, deadlineMs = 240_000): RankRun {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      // 'exit' may come before the last output; 'close' follows once the pipes are drained.
      child.once('close', () => resolve({ code, signal, output: text }))
      if (child.stdout!.closed && child.stderr!.closed) resolve({ code, signal, output: text })
    })
  })
  return { child, output: () => text, done }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** The Float32 initializers of an ONNX file, by name. */
export function initializers(bytes: Uint8Array): Map<string, Float32Array> {
  const model = onnxProto.onnx.ModelProto.decode(bytes)
  const out = new Map<string, Float32Array>()
  for (const t of model.graph!.initializer ?? []) {
    const raw = t.rawData!
    out.set(t.name!, new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)))
  }
  return out
}

export function maxAbsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  if ([...a.keys()].join() !== [...b.keys()].join()) throw new Error(`different tensors: ${[...a.keys()]} vs ${[...b.keys()]}`)
  let max = 0
  for (const [name, x] of a) {
    const y = b.get(name)!
    if (x.length !== y.length) throw new Error(`${name}: ${x.length} vs ${y.length} values`)
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]! - y[i]!))
  }
  return max
}
