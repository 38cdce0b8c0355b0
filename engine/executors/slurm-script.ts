/**
 * The sbatch script of a Slurm job, generated from validated options only (pure: no I/O).
 *
 * Nothing a user wrote ever becomes an sbatch option or shell text: every `#SBATCH` line comes from a typed
 * option that matched a strict pattern (anything else is refused with a message naming the option), paths
 * must be plain absolute paths, and the argv and environment values appear only inside single quotes.
 * The torchrun environment is derived inside the job, per rank, from the SLURM_* variables that srun sets.
 */
import type { JobSpec, SlurmOptions } from './executor.ts'
import { shellQuote } from './shell-quote.ts'

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string }

/** Files of one job, all under `<workdir>/.cairn-slurm/` (the cluster's shared file system). */
export interface SlurmJobFiles {
  dir: string
  script: string
  env: string
  stdout: string
  stderr: string
}

export interface SlurmScript {
  /** The script text handed to sbatch. */
  text: string
  /** The env file's text (`export NAME='value'` lines), written with mode 0600 and sourced by the script. */
  envText: string
  jobName: string
  files: SlurmJobFiles
}

// Slurm's names: partitions, accounts and QOS are words (a comma separates alternatives); constraints
// add the feature operators & | ! : . A leading '-' is refused so that no value can look like an option.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.,-]{0,255}$/
const CONSTRAINT = /^[A-Za-z0-9_][A-Za-z0-9_.,:|&!-]{0,255}$/
const TIME = /^(?:(?:\d+-)?\d{1,2}(?::\d{2}){0,2}|\d+)$/
const MEM = /^\d+[KMGT]?$/
// A plain absolute path: Slurm expands '%' in file names and #SBATCH lines have their own word splitting.
const PATH = /^\/[A-Za-z0-9._/+@=,:~-]*$/
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Validates the `slurm:` options (SPEC section 4); the first problem is reported, naming the option. */
export function validateSlurmOptions(options: SlurmOptions | undefined): Checked<string[]> {
  const lines: string[] = []
  if (options === undefined) return { ok: true, value: lines }
  const known = new Set(['partition', 'account', 'qos', 'time', 'mem', 'constraint', 'exclusive'])
  for (const key of Object.keys(options)) {
    if (!known.has(key)) return { ok: false, message: `slurm.${key} is not a Slurm option cairn knows (partition, account, qos, time, mem, constraint, exclusive)` }
  }
  const words: [keyof SlurmOptions, RegExp, string][] = [
    ['partition', NAME, 'a partition name (letters, digits, _ . - and , between names)'],
    ['account', NAME, 'an account name (letters, digits, _ . -)'],
    ['qos', NAME, 'a QOS name (letters, digits, _ . -)'],
    ['time', TIME, 'a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS'],
    ['mem', MEM, 'a memory size: digits with an optional K, M, G or T suffix'],
    ['constraint', CONSTRAINT, 'node features (letters, digits, _ . - and the operators & | ! : ,)'],
  ]
  for (const [key, pattern, what] of words) {
    const value = options[key]
    if (value === undefined) continue
    if (typeof value !== 'string' || !pattern.test(value)) return { ok: false, message: `slurm.${key} must be ${what}; got ${JSON.stringify(value)}` }
    lines.push(`--${key}=${value}`)
  }
  if (options.exclusive !== undefined && typeof options.exclusive !== 'boolean') return { ok: false, message: `slurm.exclusive must be true or false; got ${JSON.stringify(options.exclusive)}` }
  if (options.exclusive === true) lines.push('--exclusive')
  return { ok: true, value: lines }
}

export { shellQuote }

/** A job name Slurm shows as is: letters, digits, _ . - only, at most 64 characters. */
export function sanitizeJobName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)
  return clean === '' ? 'cairn' : clean
}

function count(name: string, value: number, min: number): string | undefined {
  return Number.isInteger(value) && value >= min && value <= 100_000 ? undefined : `${name} must be an integer from ${min}; got ${JSON.stringify(value)}`
}

/**
 * The per-rank wrapper srun runs: the torchrun variables from SLURM_* (SPEC section 4), then the argv.
 * MASTER_ADDR and MASTER_PORT are computed once by the batch script and inherited.
 */
const RANK_WRAPPER = 'export RANK="$SLURM_PROCID" NODE_RANK="$SLURM_NODEID" LOCAL_RANK="$SLURM_LOCALID" WORLD_SIZE="$SLURM_NTASKS" LOCAL_WORLD_SIZE="$SLURM_NTASKS_PER_NODE"; exec "$@"'

/**
 * Builds the script for `spec`; `name` becomes the (sanitized) job name and names the job's files.
 * Refuses, with a message, any option, path, env name or argv word it cannot pass safely.
 */
export function buildSlurmScript(spec: JobSpec, name: string, defaults: { partition?: string; account?: string } = {}): Checked<SlurmScript> {
  for (const problem of [count('nodes', spec.nodes, 1), count('tasks_per_node', spec.tasksPerNode, 1), count('gpus_per_node', spec.gpusPerNode, 0)]) {
    if (problem !== undefined) return { ok: false, message: problem }
  }
  if (spec.masterPort !== undefined && (!Number.isInteger(spec.masterPort) || spec.masterPort < 1 || spec.masterPort > 65_535)) return { ok: false, message: `master port must be 1..65535; got ${spec.masterPort}` }
  if (!PATH.test(spec.workdir) || spec.workdir.split('/').includes('..')) return { ok: false, message: `the Slurm workdir must be an absolute path of letters, digits and . _ / + @ = , : ~ - (no '..'); got ${JSON.stringify(spec.workdir)}` }
  if (spec.argv.length === 0) return { ok: false, message: 'the command is empty' }
  for (const word of spec.argv) {
    if (word.includes('\0')) return { ok: false, message: 'a command argument contains a NUL byte' }
  }
  const merged: SlurmOptions = { ...(defaults.partition !== undefined ? { partition: defaults.partition } : {}), ...(defaults.account !== undefined ? { account: defaults.account } : {}), ...spec.slurm }
  const options = validateSlurmOptions(merged)
  if (!options.ok) return options
  const envLines: string[] = []
  for (const [key, value] of Object.entries(spec.env)) {
    if (!ENV_NAME.test(key)) return { ok: false, message: `environment variable name ${JSON.stringify(key)} is not a valid name (letters, digits, _)` }
    if (value.includes('\0')) return { ok: false, message: `environment variable ${key} contains a NUL byte` }
    envLines.push(`export ${key}=${shellQuote(value)}`)
  }

  const jobName = sanitizeJobName(name)
  const dir = `${spec.workdir.replace(/\/+$/, '')}/.cairn-slurm`
  const files: SlurmJobFiles = { dir, script: `${dir}/${jobName}.sh`, env: `${dir}/${jobName}.env`, stdout: `${dir}/${jobName}.out`, stderr: `${dir}/${jobName}.err` }
  const sbatch = [
    `--job-name=${jobName}`,
    `--nodes=${spec.nodes}`,
    `--ntasks-per-node=${spec.tasksPerNode}`,
    ...(spec.gpusPerNode > 0 ? [`--gpus-per-node=${spec.gpusPerNode}`] : []),
    `--output=${files.stdout}`,
    `--error=${files.stderr}`,
    // A requeued job runs again under its id: its output goes on after the first run's instead of over it,
    // so the tail that follows the file (slurm-output.ts) misses and repeats nothing.
    '--open-mode=append',
    `--chdir=${spec.workdir}`,
    // The worker's own environment (database URL, secrets) stays out of the job.
    '--export=NONE',
    ...options.value,
  ]
  // Without a port given: one from the job id, stepped past ports that something on this node (the
  // allocation's first, where the batch script and rank 0 run) already listens on, when `ss` is there.
  const portLines = spec.masterPort !== undefined
    ? [`MASTER_PORT=${spec.masterPort}`]
    : [
        'MASTER_PORT=$((15000 + SLURM_JOB_ID % 20000))',
        'if command -v ss >/dev/null 2>&1; then',
        '  tries=0',
        '  while [ "$tries" -lt 100 ] && [ -n "$(ss -Htln "sport = :$MASTER_PORT" 2>/dev/null)" ]; do MASTER_PORT=$((MASTER_PORT + 1)); tries=$((tries + 1)); done',
        'fi',
      ]
  const text = [
    '#!/bin/sh',
    ...sbatch.map((option) => `#SBATCH ${option}`),
    '# Generated by cairn. The first line that is not a comment ends the #SBATCH options.',
    `. ${shellQuote(files.env)}`,
    // MASTER_ADDR: the first node of the allocation, by its address when Slurm knows one.
    'first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
    'node_addr=$(scontrol show node "$first_node" -o 2>/dev/null | sed -n \'s/.* NodeAddr=\\([^ ]*\\).*/\\1/p\')',
    'MASTER_ADDR=${node_addr:-$first_node}',
    ...portLines,
    'export MASTER_ADDR MASTER_PORT',
    `exec srun --label --export=ALL --distribution=block --kill-on-bad-exit=1 sh -c ${shellQuote(RANK_WRAPPER)} sh ${spec.argv.map(shellQuote).join(' ')}`,
    '',
  ].join('\n')
  return { ok: true, value: { text, envText: envLines.map((line) => `${line}\n`).join(''), jobName, files } }
}

/** The `#SBATCH` options of a script, as sbatch reads them (up to the first line that is not a comment). */
export function sbatchOptionsOf(text: string): string[] {
  const options: string[] = []
  for (const line of text.split('\n').slice(1)) {
    if (line.trim() === '') continue
    if (!line.startsWith('#')) break
    if (line.startsWith('#SBATCH')) options.push(line.slice('#SBATCH'.length).trim())
  }
  return options
}
