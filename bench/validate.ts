/**
 * Generates 1,000 DAG files of 20 tasks each and validates them with one `cairn validate` call
 * (a real child process, start-up included). Prints files per second and time per file, beside
 * the raw baseline of parsing the same files with the bare `yaml` package in this process.
 * Goal: at least 1,000 files/s. A benchmark prints figures; it never fails on a timing.
 */
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { parseDocument } from 'yaml'

const FILES = Number(process.env.BENCH_FILES ?? 1000)
const TASKS = 20

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

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-validate-'))
try {
  const dags = join(dir, 'dags')
  mkdirSync(dags)
  for (let n = 0; n < FILES; n++) writeFileSync(join(dags, `bench_${String(n).padStart(4, '0')}.yaml`), dagFile(n))

  // Baseline: the bare YAML parser over the same bytes, in this process (no start-up, one core).
  const texts = readdirSync(dags).map((f) => readFileSync(join(dags, f), 'utf8'))
  for (const text of texts.slice(0, 50)) parseDocument(text)
  const baseStart = performance.now()
  for (const text of texts) parseDocument(text)
  const baseMs = performance.now() - baseStart

  const cli = new URL('../bin/cairn.js', import.meta.url).pathname
  const warm = existsSync(new URL('../node_modules/.cache/cairn/', import.meta.url))
  const started = performance.now()
  const run = spawnSync(process.execPath, [cli, 'validate', dags, '--format', 'json'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  const wallMs = performance.now() - started
  const diagnostics = run.status === 0 || run.status === 1 ? (JSON.parse(run.stdout) as unknown[]).length : -1

  console.log(`validate: ${FILES} files x ${TASKS} tasks, one \`cairn validate\` process (start-up included; compiled-schema and code caches ${warm ? 'warm' : 'cold'})`)
  console.log(`  exit code ${run.status}, ${diagnostics} diagnostics${run.status === 0 ? '' : `\n  stderr: ${run.stderr.trim()}`}`)
  console.log(`  wall time        ${(wallMs / 1000).toFixed(3)} s`)
  console.log(`  files per second ${(FILES / (wallMs / 1000)).toFixed(0)}   (goal >= 1000)`)
  console.log(`  time per file    ${(wallMs / FILES).toFixed(3)} ms`)
  console.log(`baseline: bare \`yaml\` parseDocument of the same files, one core, no start-up`)
  console.log(`  total ${(baseMs / 1000).toFixed(3)} s, ${(FILES / (baseMs / 1000)).toFixed(0)} files/s, ${(baseMs / FILES).toFixed(3)} ms per file`)
} finally {
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true }); else console.log(dir)
}
