/**
 * Engine benchmarks, each printed beside bare pg-boss measured in the same run on the same database:
 *   chain40     a chain of 40 noop tasks, trigger to run success (goal: <= 3x 40 bare pg-boss hops)
 *   fanout2000  one DAG of 2,000 independent noop tasks: tasks per second (goal: >= 2,000/s)
 *   shell40     the chain with `shell` running `true`: the engine's cost per hop beyond the spawn
 * Usage: node bench/engine.ts [chain40|fanout2000|shell40]...   (default: all)
 * Benchmarks print figures; they never fail on a timing.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { PgBoss } from 'pg-boss'
import { silentLogger } from '../engine/log.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { createDb } from '../engine/store/db.ts'
import type { Db } from '../engine/store/db.ts'
import { migrate } from '../engine/store/migrate.ts'
import { startBoss } from '../engine/queue/task-queue.ts'
import { startScheduler } from '../engine/scheduler/scheduler.ts'
import { startWorker } from '../engine/worker/worker.ts'
import { triggerRun } from '../engine/store/control.ts'
import { createSecretStore } from '../engine/secrets/secrets.ts'

const log = silentLogger()
const which = process.argv.slice(2)
const want = (name: string): boolean => which.length === 0 || which.includes(name)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const ms = (x: number): string => `${x.toFixed(1)} ms`

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-engine-'))
const dags = join(dir, 'dags')
mkdirSync(dags)
const chain = (id: string, operator: string, params: string): string =>
  `dag: ${id}\ntasks:\n` + Array.from({ length: 40 }, (_, i) => `  t${i}:\n    operator: ${operator}\n${i > 0 ? `    depends_on: t${i - 1}\n` : ''}${params}`).join('')
writeFileSync(join(dags, 'chain40.yaml'), chain('chain40', 'noop', ''))
writeFileSync(join(dags, 'shell40.yaml'), chain('shell40', 'shell', '    params: { command: ["true"] }\n'))
writeFileSync(join(dags, 'fanout2000.yaml'), `dag: fanout2000\nmax_active_tasks: 100000\ntasks:\n` + Array.from({ length: 2000 }, (_, i) => `  t${i}: { operator: noop }\n`).join(''))

const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const db = createDb(pg.url, { log, max: 10 })
try {
  await migrate(db, log)
  console.log(`engine benchmarks on embedded PostgreSQL (port ${pg.port}), ${process.platform} ${process.arch}, node ${process.version}`)

  const bare = await bareChain(pg.url, 40, 5)
  console.log(`baseline: bare pg-boss, 40 send -> handler hops with LISTEN/NOTIFY: median ${ms(bare)} (5 rounds)`)
  const spawnTrue = measureSpawn(40)
  console.log(`baseline: spawning \`true\` 40 times in a row from Node: ${ms(spawnTrue)}`)

  const boss = await startBoss({ url: pg.url, log, max: 6 })
  const scheduler = await startScheduler({ db, boss, log, dagsFolder: dags, cwd: dir, names: undefined, loopMs: 1000 })
  const worker = await startWorker({ db, boss, log, slots: 64, workRoot: join(dir, 'work'), secrets: createSecretStore({ env: {} }), workerEnv: process.env })

  if (want('chain40')) {
    const times = []
    for (let i = 0; i < 5; i++) times.push(await runOnce(db, 'chain40'))
    const m = median(times)
    console.log(`chain40: 40 noop tasks in a chain, trigger -> run success: median ${ms(m)} (${times.map((t) => t.toFixed(0)).join(', ')} ms)`)
    console.log(`  = ${(m / bare).toFixed(2)}x bare pg-boss (goal <= 3x), ${(m / 40).toFixed(2)} ms per hop`)
    console.log(`  where a hop's time goes (medians over the last run, from the state history): ${await hopBreakdown(db, 'chain40')}`)
  }
  if (want('shell40')) {
    const times = []
    for (let i = 0; i < 3; i++) times.push(await runOnce(db, 'shell40'))
    const m = median(times)
    console.log(`shell40: 40 shell tasks running \`true\` in a chain: median ${ms(m)}; beyond spawning: ${ms((m - spawnTrue) / 40)} per hop`)
    console.log(`  = ${(m / bare).toFixed(2)}x bare pg-boss; ${((m - spawnTrue) / bare).toFixed(2)}x with the 40 spawns taken out (bare pg-boss: ${ms(bare / 40)} per hop)`)
  }
  if (want('fanout2000')) {
    const t = await runOnce(db, 'fanout2000', 120_000)
    console.log(`fanout2000: 2,000 independent noop tasks in ${ms(t)}: ${(2000 / (t / 1000)).toFixed(0)} tasks/s (goal >= 2,000/s)`)
    console.log(`  timeline: ${await fanoutTimeline(db)}`)
    const bareFan = await bareFanout(pg.url, 2000)
    console.log(`  baseline: bare pg-boss, 2,000 jobs sent in one insert and handled (batch 100, 4 local workers): ${ms(bareFan)}, ${(2000 / (bareFan / 1000)).toFixed(0)} jobs/s`)
  }
  await worker.drain(5000)
  await scheduler.stop()
  await boss.stop({ graceful: false, close: true })
} finally {
  await db.close()
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}

async function runOnce(db: Db, dagId: string, timeoutMs = 60_000): Promise<number> {
  const started = performance.now()
  const result = await db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId, params: {} }))
  if (!result.ok) throw new Error(result.message)
  const runId = result.run.runId
  const done = new Promise<void>((resolve, reject) => {
    let unlisten: (() => Promise<void>) | undefined
    let over = false
    const check = async (): Promise<void> => {
      if (over) return
      const { rows } = await db.query<{ state: string }>('SELECT state FROM cairn.run WHERE run_id = $1', [runId])
      const state = rows[0]?.state
      if ((state === 'success' || state === 'failed' || state === 'cancelled') && !over) {
        over = true
        clearInterval(poll)
        clearTimeout(limit)
        await unlisten?.()
        if (state === 'success') resolve()
        else reject(new Error(`${dagId} run ended ${state}`))
      }
    }
    const safeCheck = (): void => void check().catch(reject)
    const poll = setInterval(safeCheck, 250)
    const limit = setTimeout(() => {
      over = true
      clearInterval(poll)
      reject(new Error(`${dagId} did not finish in ${timeoutMs} ms`))
    }, timeoutMs)
    void db.listen('cairn_wake', safeCheck).then((u) => (unlisten = u))
  })
  await done
  return performance.now() - started
}

async function bareChain(url: string, hops: number, rounds: number): Promise<number> {
  const boss = new PgBoss({ connectionString: url, schema: 'bench_boss', useListenNotify: true, supervise: false, schedule: false } as ConstructorParameters<typeof PgBoss>[0])
  await boss.start()
  await boss.createQueue('hop', { notify: true } as never)
  let finish: (() => void) | undefined
  await boss.work<{ n: number }>('hop', { batchSize: 1, localConcurrency: 4 } as never, async ([job]) => {
    if (job!.data.n + 1 < hops) await boss.send('hop', { n: job!.data.n + 1 })
    else finish?.()
  })
  const times: number[] = []
  for (let r = 0; r < rounds; r++) {
    const started = performance.now()
    await new Promise<void>((resolve) => {
      finish = resolve
      void boss.send('hop', { n: 0 })
    })
    times.push(performance.now() - started)
  }
  await boss.stop({ graceful: false, close: true })
  return median(times)
}

async function bareFanout(url: string, count: number): Promise<number> {
  const boss = new PgBoss({ connectionString: url, schema: 'bench_boss2', useListenNotify: true, supervise: false, schedule: false } as ConstructorParameters<typeof PgBoss>[0])
  await boss.start()
  await boss.createQueue('fan', { notify: true } as never)
  let left = count
  let finish: (() => void) | undefined
  await boss.work<object>('fan', { batchSize: 100, localConcurrency: 4, burstWhenBatchFull: true }, async (jobs) => {
    left -= jobs.length
    if (left <= 0) finish?.()
  })
  const started = performance.now()
  await new Promise<void>((resolve) => {
    finish = resolve
    void boss.insert('fan', Array.from({ length: count }, (_, i) => ({ data: { i } })))
  })
  const t = performance.now() - started
  await boss.stop({ graceful: false, close: true })
  return t
}

/** Median time from queued to running (dispatch), running to success (execution) and success to the next task queued (advance). */
async function hopBreakdown(db: Db, dagId: string): Promise<string> {
  const { rows } = await db.query<{ task_id: string; to_state: string; at: Date }>(
    `SELECT task_id, to_state, at FROM cairn.state_history WHERE run_id = (SELECT run_id FROM cairn.run WHERE dag_id = $1 ORDER BY queued_at DESC LIMIT 1) AND task_id IS NOT NULL ORDER BY id`,
    [dagId],
  )
  const at = new Map(rows.map((r) => [`${r.task_id}:${r.to_state}`, r.at.getTime()]))
  const dispatch: number[] = []
  const run: number[] = []
  const advance: number[] = []
  for (let i = 0; i < 40; i++) {
    const q = at.get(`t${i}:queued`)
    const r = at.get(`t${i}:running`)
    const s = at.get(`t${i}:success`)
    if (q !== undefined && r !== undefined) dispatch.push(r - q)
    if (r !== undefined && s !== undefined) run.push(s - r)
    const next = at.get(`t${i + 1}:queued`)
    if (s !== undefined && next !== undefined) advance.push(next - s)
  }
  return `dispatch ${median(dispatch).toFixed(1)} ms, execute ${median(run).toFixed(1)} ms, advance ${median(advance).toFixed(1)} ms`
}

/** When the run was created, when its tasks were all queued, first and last claims and successes, run end. */
async function fanoutTimeline(db: Db): Promise<string> {
  const { rows } = await db.query<{ created: Date; queued: Date; first_run: Date; last_run: Date; last_ok: Date; ended: Date }>(
    `SELECT min(h.at) FILTER (WHERE h.task_id IS NULL AND h.to_state = 'queued') AS created,
            max(h.at) FILTER (WHERE h.to_state = 'queued' AND h.task_id IS NOT NULL) AS queued,
            min(h.at) FILTER (WHERE h.to_state = 'running' AND h.task_id IS NOT NULL) AS first_run,
            max(h.at) FILTER (WHERE h.to_state = 'running' AND h.task_id IS NOT NULL) AS last_run,
            max(h.at) FILTER (WHERE h.to_state = 'success' AND h.task_id IS NOT NULL) AS last_ok,
            max(h.at) FILTER (WHERE h.task_id IS NULL AND h.to_state = 'success') AS ended
     FROM cairn.state_history h WHERE h.run_id = (SELECT run_id FROM cairn.run WHERE dag_id = 'fanout2000' ORDER BY queued_at DESC LIMIT 1)`,
  )
  const r = rows[0]!
  const at = (d: Date): string => `+${d.getTime() - r.created.getTime()} ms`
  return `all queued ${at(r.queued)}, first claim ${at(r.first_run)}, last claim ${at(r.last_run)}, last success ${at(r.last_ok)}, run success ${at(r.ended)}`
}

function measureSpawn(times: number): number {
  const started = performance.now()
  for (let i = 0; i < times; i++) spawnSync('true')
  return performance.now() - started
}
