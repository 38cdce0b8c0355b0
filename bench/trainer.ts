/**
 * Trainer throughput (issue 11, acceptance 5): training rows per second of `cairn-train` on the wasm
 * backend with 1 rank and with 2 ranks (two processes on 127.0.0.1, LOCAL_WORLD_SIZE=2, gradients averaged
 * through rank 0) at the same global batch (1024), beside the raw baseline in the same run: a plain TF.js
 * `model.fit` of the same model (same layers, Adam, batch, epochs) in a process of its own; and the machine's
 * own ceiling for two processes: two independent 1-rank runs at half the batch, at once (no exchange); and two
 * bare loops of the trainer's step at half the batch, free and then in lockstep with a one-byte barrier per step
 * (what synchronous steps cost on this machine whatever carries the gradients). The figure is
 * training rows (rows x epochs) over the training loop's time, as each reports it (data loading and
 * evaluation are outside it); the wall time of the whole command is printed too, and the load average
 * before and after (the figures mean little on a machine busy with other work). Prints figures, never fails.
 * `npm run bench:trainer [-- ROWS [ROUNDS [EPOCHS [HIDDEN]]]]`, HIDDEN like 32,16; several separated by `/`
 * measure several model sizes in one run (default 32,16/128,64: a small and a larger model).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { writeTrainingSet } from '../test/helpers/train-data.ts'

const ROWS = Number(process.argv[2] ?? 100_000)
// Interleaved rounds; on a shared machine other load only ever adds time, so the best round is the figure compared.
const ROUNDS = Number(process.argv[3] ?? 5)
const EPOCHS = Number(process.argv[4] ?? 3)
const BATCH = 1024
const HIDDEN = process.argv[2] === '--baseline' ? process.argv[6]! : (process.argv[5] ?? '32,16/128,64')
const FEATURES = 16
const PAIR = `2 x 1 rank, batch ${BATCH / 2}, at once`
const COPIES = `2 x 1 rank, batch ${BATCH}, at once`
const FREE = `bare: 2 step loops, ${BATCH / 2} rows`
const LOCKED = `bare: same, 1-byte barrier/step`
const BIN = fileURLToPath(new URL('../bin/cairn-train.js', import.meta.url))
const SELF = fileURLToPath(import.meta.url)

if (process.argv[2] === '--baseline') {
  await baseline(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]))
  process.exit(0)
}
if (process.argv[2] === '--step') {
  await stepCost(process.argv[3]!)
  process.exit(0)
}
if (process.argv[2] === '--lockstep') {
  await lockstep(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]), process.argv[7] === 'barrier')
  process.exit(0)
}


function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string; seconds: number }> {
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    child.on('close', (code) => resolve({ code, output, seconds: (performance.now() - started) / 1000 }))
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ')
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-trainer-'))
try {
  const { file } = await writeTrainingSet(dir, { rows: ROWS, task: 'binary', features: FEATURES })
  const features = Array.from({ length: FEATURES }, (_, i) => `x${i}`).join(',')
  const trainRows = Math.round(ROWS * 0.8) * EPOCHS
  console.log(`trainer benchmark: ${ROWS} rows (${Math.round(ROWS * 0.8)} train) x ${FEATURES} features, binary, Adam, global batch ${BATCH}, ${EPOCHS} epochs (${trainRows} training rows and ${Math.ceil((ROWS * 0.8) / BATCH) * EPOCHS} steps per run), wasm backend, node ${process.version}, ${availableParallelism()} cores, ${ROUNDS} interleaved rounds`)
  const summary: string[] = []
  for (const hidden of HIDDEN.split('/')) {
    const trainArgs = (out: string, batch = BATCH) => [BIN, '--data', file, '--label', 'label', '--task', 'binary', '--features', features, '--hidden', hidden,
      '--epochs', String(EPOCHS), '--batch-size', String(batch), '--learning-rate', '0.001', '--backend', 'wasm', '--output', join(dir, out)]
    const figures: Record<string, { rate: number[]; wall: number[] }> = {
      'plain TF.js fit (1 process)': { rate: [], wall: [] },
      'cairn-train 1 rank': { rate: [], wall: [] },
      [COPIES]: { rate: [], wall: [] },
      [PAIR]: { rate: [], wall: [] },
      [FREE]: { rate: [], wall: [] },
      [LOCKED]: { rate: [], wall: [] },
      'cairn-train 2 ranks': { rate: [], wall: [] },
    }
    const ratios: number[] = []
    const ceilings: number[] = []
    const capacities: number[] = []
    const barrierCosts: number[] = []
    let parameters = 0
    let threads = 0
    console.log(`\nmlp ${FEATURES}-${hidden.replaceAll(',', '-')}-1; load average before: ${load()}`)
    // What one step costs in one process (min of 200: the least disturbed by other load), at the global batch
    // and at the shard of 2 ranks: t(B) / t(B/2) bounds what 2 ranks can gain on 2 idle cores.
    const step = await run([SELF, '--step', hidden])
    const cost = JSON.parse(/step=(.*)/.exec(step.output)?.[1] ?? 'null') as Record<string, number> | null
    if (step.code !== 0 || !cost) throw new Error(`step cost failed: ${step.output}`)
    const stepLine = `one step (gradients + Adam) in one process: ${cost[`min_${BATCH}`]!.toFixed(2)} ms at ${BATCH} rows, ${cost[`min_${BATCH / 2}`]!.toFixed(2)} ms at ${BATCH / 2} (min of 200; medians ${cost[`median_${BATCH}`]!.toFixed(2)} and ${cost[`median_${BATCH / 2}`]!.toFixed(2)} ms): 2 ranks can reach at most ${(cost[`min_${BATCH}`]! / cost[`min_${BATCH / 2}`]!).toFixed(2)}x before any exchange`
    console.log(stepLine)
    for (let round = 1; round <= ROUNDS; round++) {
      const base = await run([SELF, '--baseline', file, String(EPOCHS), String(BATCH), hidden])
      const rate = Number(/rows_per_second=(\S+)/.exec(base.output)?.[1])
      if (base.code !== 0 || !rate) throw new Error(`baseline failed: ${base.output}`)
      figures['plain TF.js fit (1 process)']!.rate.push(rate)
      figures['plain TF.js fit (1 process)']!.wall.push(base.seconds)

      const one = await run(trainArgs('one'))
      if (one.code !== 0) throw new Error(`1 rank failed: ${one.output}`)
      const m1 = JSON.parse(readFileSync(join(dir, 'one', 'metrics.json'), 'utf8'))
      figures['cairn-train 1 rank']!.rate.push(m1.rows_per_second)
      figures['cairn-train 1 rank']!.wall.push(one.seconds)
      parameters = m1.parameters

      // What the machine gives two processes, with no exchange: two independent 1-rank runs at once. At the full
      // batch, their summed rows/s over one run's is the machine's capacity for two processes of this work (2x on
      // two free cores; a VM whose two vCPUs share one physical core, or neighbours, give less). At half the
      // batch, each does what one of 2 ranks does: the most 2 ranks could reach with a free exchange.
      const copies = await independentPair(trainArgs, BATCH)
      figures[COPIES]!.rate.push(copies.rate)
      figures[COPIES]!.wall.push(copies.seconds)
      capacities.push(copies.rate / m1.rows_per_second)
      const pair = await independentPair(trainArgs, BATCH / 2)
      figures[PAIR]!.rate.push(pair.rate)
      figures[PAIR]!.wall.push(pair.seconds)
      ceilings.push(pair.rate / m1.rows_per_second)

      // What lockstep alone costs here, whatever exchanges the data: two bare loops of the trainer's step at half
      // the batch (gradients + Adam, no exchange), then the same two loops waiting for each other once per step
      // (one byte each way over TCP, as small as a barrier gets). A synchronous step lasts as long as the
      // slower of the two, so on cores whose speed varies the barrier costs more than its bytes.
      const steps = Math.ceil(Math.round(ROWS * 0.8) / BATCH) * EPOCHS
      for (const [name, barrier] of [[FREE, false], [LOCKED, true]] as const) {
        const port = String(await freePort())
        const loops = await Promise.all([0, 1].map((rank) => run([SELF, '--lockstep', hidden, String(BATCH / 2), String(steps), port, barrier ? 'barrier' : 'free'], { RANK: String(rank) })))
        if (loops.some((l) => l.code !== 0)) throw new Error(`lockstep failed: ${loops.map((l) => l.output).join('\n')}`)
        figures[name]!.rate.push(loops.reduce((sum, l) => sum + Number(/rows_per_second=(\S+)/.exec(l.output)?.[1]), 0))
        figures[name]!.wall.push(Math.max(...loops.map((l) => l.seconds)))
      }
      barrierCosts.push(figures[LOCKED]!.rate.at(-1)! / figures[FREE]!.rate.at(-1)!)

      // Two ranks on this one machine: LOCAL_WORLD_SIZE tells each that it shares the node's cores.
      const env = { WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) }
      const [r0, r1] = await Promise.all([run(trainArgs('two'), { ...env, RANK: '0', LOCAL_RANK: '0' }), run(trainArgs('two-r1'), { ...env, RANK: '1', LOCAL_RANK: '1' })])
      if (r0.code !== 0 || r1.code !== 0) throw new Error(`2 ranks failed: ${r0.output}\n${r1.output}`)
      const m2 = JSON.parse(readFileSync(join(dir, 'two', 'metrics.json'), 'utf8'))
      figures['cairn-train 2 ranks']!.rate.push(m2.rows_per_second)
      figures['cairn-train 2 ranks']!.wall.push(Math.max(r0.seconds, r1.seconds))
      threads = m2.threads
      ratios.push(m2.rows_per_second / m1.rows_per_second)
      console.log(`  round ${round}: ${Object.entries(figures).map(([k, v]) => `${k} ${Math.round(v.rate.at(-1)!)} rows/s`).join(', ')}; 2/1 ${ratios.at(-1)!.toFixed(2)}x, machine capacity ${capacities.at(-1)!.toFixed(2)}x, ceiling ${ceilings.at(-1)!.toFixed(2)}x, bare barrier keeps ${barrierCosts.at(-1)!.toFixed(2)}x of free loops (exchange ${m2.exchange_seconds.toFixed(2)} of ${m2.train_seconds.toFixed(2)} s); load ${load()}`)
    }
    const best = (xs: number[]) => Math.max(...xs)
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    console.log(`${parameters} parameters, ${threads} thread(s) per rank`)
    console.log(`${'what'.padEnd(30)} ${'best rows/s'.padStart(12)} ${'median rows/s'.padStart(14)} ${'best wall s'.padStart(12)}`)
    for (const [name, v] of Object.entries(figures)) {
      console.log(`${name.padEnd(30)} ${String(Math.round(best(v.rate))).padStart(12)} ${String(Math.round(median(v.rate))).padStart(14)} ${Math.min(...v.wall).toFixed(2).padStart(12)}`)
    }
    const speedup = best(figures['cairn-train 2 ranks']!.rate) / best(figures['cairn-train 1 rank']!.rate)
    const line = `mlp ${FEATURES}-${hidden.replaceAll(',', '-')}-1 (${parameters} parameters, batch ${BATCH}, ${threads} thread(s) per rank): 1 rank ${Math.round(best(figures['cairn-train 1 rank']!.rate))} rows/s, 2 ranks ${Math.round(best(figures['cairn-train 2 ranks']!.rate))} rows/s; 2 ranks / 1 rank best vs best ${speedup.toFixed(2)}x, median of rounds ${median(ratios).toFixed(2)}x (goal >= 1.5x); 2 independent runs at once / 1: machine capacity (batch ${BATCH}) median ${median(capacities).toFixed(2)}x, ceiling for 2 ranks (batch ${BATCH / 2}) median ${median(ceilings).toFixed(2)}x; bare step loops with a 1-byte barrier per step keep ${median(barrierCosts).toFixed(2)}x of their free throughput (median), cairn 2 ranks reach ${(median(figures['cairn-train 2 ranks']!.rate) / median(figures[LOCKED]!.rate)).toFixed(2)}x of the barrier loops'; 1 rank / plain fit ${(best(figures['cairn-train 1 rank']!.rate) / best(figures['plain TF.js fit (1 process)']!.rate)).toFixed(2)}x; load average after: ${load()}`
    console.log(line)
    summary.push(line, `  ${stepLine}`)
  }
  console.log(`\n${summary.join('\n')}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}

/** Two 1-rank runs of cairn-train at once, independent of each other: their summed rows/s and the longer wall time. */
async function independentPair(trainArgs: (out: string, batch?: number) => string[], batch: number): Promise<{ rate: number; seconds: number }> {
  const outs = [`alone-${batch}-a`, `alone-${batch}-b`]
  const runs = await Promise.all(outs.map((out) => run(trainArgs(out, batch))))
  if (runs.some((r) => r.code !== 0)) throw new Error(`independent runs failed: ${runs.map((r) => r.output).join('\n')}`)
  const rate = outs.reduce((sum, out) => sum + JSON.parse(readFileSync(join(dir, out, 'metrics.json'), 'utf8')).rows_per_second, 0)
  return { rate, seconds: Math.max(...runs.map((r) => r.seconds)) }
}

/**
 * The trainer's own step outside cairn-train, on the wasm backend: a fresh MLP of `hidden` with Adam, random
 * binary rows from `seed`, and one step = gradients, then (after `between`, when given) the Adam update.
 */
async function stepLoop(hidden: string, seed: number) {
  const { loadTf, createModel, gradients, Adam } = await import('../engine/train/model.ts')
  const { prng } = await import('../engine/train/data.ts')
  const { tf } = await loadTf('wasm')
  const model = createModel(tf, { kind: 'mlp', hidden: hidden.split(',').map(Number), task: 'binary', inputs: FEATURES, outputs: 1 }, 1)
  const adam = new Adam(model, 0.001)
  const random = prng(seed)
  return {
    batch: (rows: number) => ({
      x: Float32Array.from({ length: rows * FEATURES }, () => random() * 2 - 1),
      y: Float32Array.from({ length: rows }, () => (random() > 0.5 ? 1 : 0)),
    }),
    async step(x: Float32Array, y: Float32Array, rows: number, between?: () => Promise<void>): Promise<void> {
      const { flat } = gradients(tf, model, x, y, rows)
      if (between) await between()
      adam.apply(tf, model, flat)
    },
  }
}

/**
 * One of two bare step loops (RANK 0 or 1): `steps` steps of gradients + Adam on `rows` random rows, and with
 * `barrier` a one-byte exchange with the other loop after each step (rank 0 listens on `port`).
 */
async function lockstep(hidden: string, rows: number, steps: number, port: number, barrier: boolean): Promise<void> {
  const rank = Number(process.env.RANK)
  const { step, batch } = await stepLoop(hidden, 7 + rank)
  const { x, y } = batch(rows)
  const socket = barrier ? await pairSocket(rank, port) : undefined
  let received = 0
  let waiting: (() => void) | undefined
  socket?.on('data', (chunk: Buffer) => {
    received += chunk.length
    waiting?.()
  })
  const meet = () => new Promise<void>((resolve) => {
    socket!.write(Buffer.of(1))
    const take = () => {
      waiting = undefined
      received--
      resolve()
    }
    if (received > 0) take()
    else waiting = take
  })
  const started = performance.now()
  for (let i = 0; i < steps; i++) await step(x, y, rows, socket ? meet : undefined)
  const seconds = (performance.now() - started) / 1000
  socket?.end()
  console.log(`rows_per_second=${(rows * steps) / seconds}`)
}

function pairSocket(rank: number, port: number): Promise<net.Socket> {
  return new Promise((resolve) => {
    const ready = (socket: net.Socket) => resolve(socket.setNoDelay(true))
    if (rank === 0) {
      const server = net.createServer((socket) => {
        server.close()
        ready(socket)
      }).listen(port, '127.0.0.1')
      return
    }
    const connect = () => {
      const socket = net.connect(port, '127.0.0.1', () => ready(socket))
      socket.once('error', () => setTimeout(connect, 50))
    }
    connect()
  })
}

/** Step cost in one process: gradients of a shard plus the Adam update, at the global batch and at half of it. */
async function stepCost(hidden: string): Promise<void> {
  const { step, batch } = await stepLoop(hidden, 5)
  const result: Record<string, number> = {}
  for (const rows of [BATCH, BATCH / 2]) {
    const { x, y } = batch(rows)
    const times: number[] = []
    for (let i = 0; i < 230; i++) {
      const started = performance.now()
      await step(x, y, rows)
      if (i >= 30) times.push(performance.now() - started)
    }
    times.sort((a, b) => a - b)
    result[`min_${rows}`] = times[0]!
    result[`median_${rows}`] = times[Math.floor(times.length / 2)]!
  }
  console.log(`step=${JSON.stringify(result)}`)
}

/** The raw baseline: tf.layers with model.fit on the same standardized rows, wasm backend. */
async function baseline(file: string, epochs: number, batchSize: number): Promise<void> {
  const { loadTf } = await import('../engine/train/model.ts')
  const { readTable, splitRows, standardization, gather } = await import('../engine/train/data.ts')
  const { tf } = await loadTf('wasm')
  const features = Array.from({ length: FEATURES }, (_, i) => `x${i}`)
  const table = await readTable([file], 'label', 'binary', features)
  const split = splitRows(table.rows, 0.2, 42)
  const set = gather(table, split.train, standardization(table, split.train))
  const model = tf.sequential()
  const hidden = HIDDEN.split(',').map(Number)
  model.add(tf.layers.dense({ units: hidden[0]!, activation: 'relu', inputShape: [FEATURES] }))
  for (const units of hidden.slice(1)) model.add(tf.layers.dense({ units, activation: 'relu' }))
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid' }))
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'binaryCrossentropy' })
  const xs = tf.tensor2d(set.x, [split.train.length, FEATURES])
  const ys = tf.tensor2d(set.y, [split.train.length, 1])
  const started = performance.now()
  await model.fit(xs, ys, { epochs, batchSize, shuffle: true, verbose: 0 })
  const seconds = (performance.now() - started) / 1000
  console.log(`rows_per_second=${(split.train.length * epochs) / seconds}`)
}
