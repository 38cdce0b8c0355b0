/**
 * `cairn-train`: the built-in trainer as a command, run the same way on every rank (by the `train`
 * operator or by hand). The rank comes from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun's
 * names); rank 0 writes model.onnx and metrics.json into --output. Exit codes: 0 done, 1 training
 * failed (a peer died, a timeout, an internal error), 2 bad arguments or bad data (retrying cannot help).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { TrainInputError } from './data.ts'
import type { Task } from './data.ts'
import { CollectiveError } from './collective.ts'
import { train } from './train.ts'
import type { TrainConfig } from './train.ts'

const USAGE = `usage: cairn-train --data FILE.parquet [--data ...] --label COLUMN --task binary|multiclass|regression --output DIR
  [--features a,b,c] [--model mlp|logistic] [--hidden 64,32] [--epochs 20] [--batch-size 256]
  [--learning-rate 0.001] [--seed 42] [--validation 0.2] [--timeout SECONDS] [--backend wasm|cpu]
environment: RANK (0), WORLD_SIZE (1), LOCAL_WORLD_SIZE (1), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500)`

class UsageError extends Error {}

function int(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, got "${value}"`)
  return n
}

function num(name: string, value: string | undefined, fallback: number, ok: (n: number) => boolean): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`${name} is out of range: "${value}"`)
  return n
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback?: T): T {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required (${allowed.join(' | ')})`)
    return fallback
  }
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`)
  return value as T
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): { config: TrainConfig; output: string } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string', multiple: true },
      label: { type: 'string' },
      features: { type: 'string' },
      task: { type: 'string' },
      model: { type: 'string' },
      hidden: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'learning-rate': { type: 'string' },
      seed: { type: 'string' },
      validation: { type: 'string' },
      output: { type: 'string' },
      timeout: { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) throw new UsageError('')
  const files = [...(values.data ?? []), ...positionals].map((f) => path.resolve(f))
  if (files.length === 0) throw new UsageError('--data is required (one or more Parquet files)')
  if (!values.label) throw new UsageError('--label is required')
  if (!values.output) throw new UsageError('--output is required')
  const kind = oneOf('model', values.model, ['mlp', 'logistic'] as const, 'mlp')
  const hidden = (values.hidden ?? '64,32').split(',').filter((s) => s.trim() !== '').map((s) => int('--hidden', s.trim(), 0, 1))
  if (kind === 'mlp' && hidden.length === 0) throw new UsageError('--hidden needs at least one layer size for an mlp')
  const worldSize = int('WORLD_SIZE', env.WORLD_SIZE, 1, 1)
  const rank = int('RANK', env.RANK, 0, 0)
  if (rank >= worldSize) throw new UsageError(`RANK ${rank} is not below WORLD_SIZE ${worldSize}`)
  const config: TrainConfig = {
    files,
    label: values.label,
    features: values.features?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    task: oneOf<Task>('task', values.task, ['binary', 'multiclass', 'regression']),
    model: { kind, hidden },
    epochs: int('--epochs', values.epochs, 20, 1),
    batchSize: int('--batch-size', values['batch-size'], 256, 1),
    learningRate: num('--learning-rate', values['learning-rate'], 0.001, (n) => n > 0),
    seed: int('--seed', values.seed, 42, 0),
    validationFraction: num('--validation', values.validation, 0.2, (n) => n >= 0 && n < 1),
    rank,
    worldSize,
    localWorldSize: int('LOCAL_WORLD_SIZE', env.LOCAL_WORLD_SIZE, 1, 1),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: int('MASTER_PORT', env.MASTER_PORT, 29500, 1),
    timeoutMs: num('--timeout', values.timeout, 300, (n) => n > 0) * 1000,
    backend: values.backend === undefined ? undefined : oneOf('backend', values.backend, ['wasm', 'cpu'] as const),
  }
  return { config, output: path.resolve(values.output) }
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseConfig>
  try {
    parsed = parseConfig(argv, process.env)
  } catch (error) {
    const message = (error as Error).message
    if (!message) {
      process.stdout.write(`${USAGE}\n`)
      return 0
    }
    process.stderr.write(`cairn-train: ${message}\n${USAGE}\n`)
    return 2
  }
  const { config, output } = parsed
  const prefix = `cairn-train[${config.rank}/${config.worldSize}]`
  const log = (line: string) => process.stdout.write(`${prefix} ${line}\n`)
  try {
    const result = await train(config, log)
    if (result.onnx && result.metrics) {
      await mkdir(output, { recursive: true })
      // Written under temporary names, then renamed: a reader never sees half a file.
      await writeFile(path.join(output, 'model.onnx.tmp'), result.onnx)
      await writeFile(path.join(output, 'metrics.json.tmp'), `${JSON.stringify(result.metrics, null, 2)}\n`)
      await rename(path.join(output, 'model.onnx.tmp'), path.join(output, 'model.onnx'))
      await rename(path.join(output, 'metrics.json.tmp'), path.join(output, 'metrics.json'))
      log(`wrote ${path.join(output, 'model.onnx')} and metrics.json`)
    }
    return 0
  } catch (error) {
    if (error instanceof TrainInputError) {
      process.stderr.write(`${prefix} bad input: ${error.message}\n`)
      return 2
    }
    if (error instanceof CollectiveError) {
      process.stderr.write(`${prefix} training failed: ${error.message}\n`)
      return 1
    }
    process.stderr.write(`${prefix} training failed: ${(error as Error).stack ?? error}\n`)
    return 1
  }
}
