/**
 * Generates 1,000 DAG files of 20 tasks each and validates them with `cairn validate` as a user runs
 * it: a new `node bin/cairn.js validate DIR` process each time, start-up included. Prints wall time
 * and files per second (median and best of several runs: a shared machine is noisy), beside two
 * baselines measured in the same run: starting `node` with nothing to do, and parsing the same files
 * with js-yaml (the parser of the validator's fast path) in this process, which is the floor for one
 * core. Goal: at least 3,000 files/s, start-up included. A benchmark prints figures; it never fails
 * on a timing.
 *
 *   node bench/validate.ts [--files N] [--runs N] [--cli path/to/bin/cairn.js]...
 *
 * Each --cli is measured on the same files (e.g. another checkout, to compare before and after),
 * in alternating rounds so that a change in the machine's load falls on each alike; without one,
 * this checkout's bin/cairn.js. The load average is printed before and after: on a shared machine
 * it says how far the figures are from an idle one.
 */
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import jsyaml from 'js-yaml'

const { values } = parseArgs({ options: { files: { type: 'string', default: '1000' }, runs: { type: 'string', default: '5' }, cli: { type: 'string', multiple: true } } })
const FILES = Number(values.files)
const RUNS = Math.max(1, Number(values.runs))
const TASKS = 20
const CLIS = values.cli?.map((path) => resolve(path)) ?? [new URL('../bin/cairn.js', import.meta.url).pathname]

function dagFile(n: number): string {
  const lines = [
    `dag: bench_${n}`,
    `description: generated benchmark DAG ${n}`,
    'owner: bench',
    'tags: [bench, generated]',
    `schedule: "${n % 60} ${n % 24} * * *"`,
    'timezone: Europe/Berlin',
    'start_date: 2026-01-01',
    'catchup: latest',
    'params:',
    '  threshold: { type: number, default: 0.8, minimum: 0, maximum: 1 }',
    '  label: { type: string, default: churned }',
    'defaults:',
    '  retries: 2',
    '  retry_delay: 30s',
    '  retry_backoff: exponential',
    '  timeout: 1h',
    'tasks:',
  ]
  for (let t = 0; t < TASKS; t++) {
    const deps = t === 0 ? [] : t % 5 === 0 ? [`t${t - 1}`, `t${t - 5}`] : [`t${t - 1}`]
    lines.push(`  t${t}:`)
    lines.push(t % 4 === 0 ? '    operator: noop' : '    operator: shell')
    if (deps.length > 0) lines.push(`    depends_on: [${deps.join(', ')}]`)
    if (t % 7 === 3) lines.push('    trigger_rule: all_done')
    if (t % 4 !== 0) {
      lines.push('    env:')
      lines.push(`      RUN_ID: "{{ run.id }}"`)
      lines.push('    params:')
      lines.push(`      command: [python, step.py, --ds, "{{ ds }}", --threshold, "{{ params.threshold }}"${t > 1 ? `, --input, "{{ tasks.t${t - 1}.outputs.path }}"` : ''}]`)
    }
  }
  return `${lines.join('\n')}\n`
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const rate = (ms: number): string => `${Math.round(FILES / (ms / 1000))}`.padStart(6)
const secs = (ms: number): string => (ms / 1000).toFixed(3)

function timeProcess(args: string[], cwd: string): { ms: number; status: number | null; stdout: string; stderr: string } {
  const started = performance.now()
  const run = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  return { ms: performance.now() - started, status: run.status, stdout: run.stdout, stderr: run.stderr }
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-validate-'))
try {
  const dags = join(dir, 'dags')
  mkdirSync(dags)
  for (let n = 0; n < FILES; n++) writeFileSync(join(dags, `bench_${String(n).padStart(4, '0')}.yaml`), dagFile(n))

  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ')
  console.log(`validate: ${FILES} files x ${TASKS} tasks; wall time of a new \`node bin/cairn.js validate DIR\` process (start-up included), ${RUNS} runs each`)
  console.log(`load average before: ${load()} (${availableParallelism()} cores)`)
  // One run first, not counted: it fills the compiled-schema and code caches as any earlier use would.
  const warm = CLIS.map((cli) => timeProcess([cli, 'validate', dags, '--format', 'json'], dir))
  // Round by round, each CLI once per round: a change in the machine's load falls on all of them alike.
  const walls = CLIS.map((): number[] => [])
  for (let run = 0; run < RUNS; run++) CLIS.forEach((cli, i) => walls[i]!.push(timeProcess([cli, 'validate', dags], dir).ms))
  CLIS.forEach((cli, i) => {
    const { status, stdout, stderr } = warm[i]!
    const diagnostics = status === 0 || status === 1 ? (JSON.parse(stdout) as unknown[]).length : -1
    const w = walls[i]!
    console.log(`  ${cli}`)
    console.log(`    exit code ${status}, ${diagnostics} diagnostics${status === 0 ? '' : `\n    stderr: ${stderr.trim()}`}`)
    console.log(`    median ${secs(median(w))} s = ${rate(median(w))} files/s   best ${secs(Math.min(...w))} s = ${rate(Math.min(...w))} files/s   (goal >= 3000 files/s)`)
  })
  console.log(`load average after: ${load()}`)

  const starts = Array.from({ length: RUNS }, () => timeProcess(['-e', '0'], dir).ms)
  console.log(`baseline: \`node -e 0\` (process start alone): median ${secs(median(starts))} s, best ${secs(Math.min(...starts))} s`)

  // The parser of the fast path over the same bytes, in this process: one core, no start-up.
  const texts = readdirSync(dags).map((f) => readFileSync(join(dags, f), 'utf8'))
  for (const text of texts.slice(0, 100)) jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA })
  const parses = Array.from({ length: RUNS }, () => {
    const started = performance.now()
    for (const text of texts) jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA })
    return performance.now() - started
  })
  console.log(`baseline: js-yaml load of the same files in this process (one core, no start-up): median ${secs(median(parses))} s = ${rate(median(parses))} files/s, best ${secs(Math.min(...parses))} s`)
} finally {
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true })
  else console.log(dir)
}
