/**
 * 500 scheduled DAGs loaded and nothing due: CPU and memory of a `cairn scheduler` process over a
 * measurement window, beside an idle bare pg-boss process (started, supervising, polling one queue)
 * measured over the same window on the same database.
 * Goals: scheduler under 5% of one core, under 250 MB. Usage: node bench/scheduler-idle.ts [seconds]
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../engine/log.ts'
import { startEmbeddedPostgres } from '../engine/store/embedded.ts'
import { createDb } from '../engine/store/db.ts'
import { migrate } from '../engine/store/migrate.ts'

const WINDOW_S = Number(process.argv[2] ?? 30)
const DAGS = 500
const log = silentLogger()
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-idle-'))
const dags = join(dir, 'dags')
mkdirSync(dags)
for (let i = 0; i < DAGS; i++) {
  // Daily at a fixed time, starting tomorrow: loaded, scheduled, nothing due during the window.
  const start = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)
  writeFileSync(
    join(dags, `idle_${i}.yaml`),
    `dag: idle_${i}\nschedule: "${i % 60} ${i % 24} * * *"\nstart_date: ${start}\ncatchup: none\ntasks:\n  a: { operator: noop }\n  b: { operator: shell, depends_on: a, params: { command: [echo, "{{ ds }}"] } }\n`,
  )
}

const pg = await startEmbeddedPostgres({ dataDir: join(dir, 'pg'), log, ephemeral: true })
const children: ChildProcess[] = []
try {
  const db = createDb(pg.url, { log })
  await migrate(db, log)
  const main = new URL('../engine/cli/main.ts', import.meta.url).pathname
  const scheduler = spawn(process.execPath, [main, 'scheduler'], { cwd: dir, env: { ...process.env, DATABASE_URL: pg.url, CAIRN_LOG_LEVEL: 'warn', CAIRN_HOME: join(dir, 'home') }, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(scheduler)
  await new Promise<void>((resolve) => scheduler.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('running') && resolve()))
  // Wait until every DAG is loaded.
  for (;;) {
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM cairn.dag')
    if (Number(rows[0]!.n) >= DAGS) break
    await new Promise((r) => setTimeout(r, 200))
  }
  await db.close()

  const baseline = spawn(process.execPath, ['--input-type=module', '-e', bareBossScript(pg.url)], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(baseline)
  await new Promise<void>((resolve) => baseline.stdout!.on('data', () => resolve()))

  await new Promise((r) => setTimeout(r, 2000))
  const before = [cpuSeconds(scheduler.pid!), cpuSeconds(baseline.pid!)]
  const started = performance.now()
  await new Promise((r) => setTimeout(r, WINDOW_S * 1000))
  const elapsed = (performance.now() - started) / 1000
  const after = [cpuSeconds(scheduler.pid!), cpuSeconds(baseline.pid!)]
  const pct = (i: number): string => ((100 * (after[i]! - before[i]!)) / elapsed).toFixed(2)
  console.log(`scheduler-idle: ${DAGS} scheduled DAGs loaded, nothing due, ${elapsed.toFixed(1)} s window`)
  console.log(`  cairn scheduler: CPU ${pct(0)}% of one core (goal < 5%), RSS ${rssMb(scheduler.pid!)} MB (goal < 250 MB)`)
  console.log(`baseline: idle bare pg-boss process (supervise on, one worker polling a notify queue): CPU ${pct(1)}% of one core, RSS ${rssMb(baseline.pid!)} MB`)
} finally {
  for (const child of children) child.kill('SIGTERM')
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once('exit', r)))))
  await pg.stop()
  rmSync(dir, { recursive: true, force: true })
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

function rssMb(pid: number): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!
  return (Number(line.replace(/\D+/g, '')) / 1024).toFixed(0)
}

function bareBossScript(url: string): string {
  const pgBoss = new URL('../node_modules/pg-boss/dist/index.js', import.meta.url).href
  return `import { PgBoss } from ${JSON.stringify(pgBoss)}
const boss = new PgBoss({ connectionString: ${JSON.stringify(url)}, schema: 'bench_idle', useListenNotify: true })
boss.on('error', () => {})
await boss.start()
await boss.createQueue('idle', { notify: true })
await boss.work('idle', async () => {})
process.stdout.write('ready\\n')
process.on('SIGTERM', async () => { await boss.stop({ graceful: false }); process.exit(0) })`
}
