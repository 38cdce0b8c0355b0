/**
 * Runs deploy/local-cluster/start and stop (a 2-node Slurm cluster and two sshd hosts on this machine) for
 * tests. Each caller gets its own state folder and its own ports, so test files running at the same time (or
 * a user's own local cluster) do not share daemons. They need root and the Debian packages slurm-wlm, munge and
 * openssh-server: without them a test file is skipped with the reason printed, except under CI=true, where a
 * failing test says what is missing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const LOCAL_CLUSTER_SCRIPTS = path.resolve(import.meta.dirname, '../../deploy/local-cluster')

/** What the local cluster needs that this machine lacks (empty when it can run). */
export function localClusterMissing(): string[] {
  const missing: string[] = []
  if (process.getuid?.() !== 0) missing.push('root')
  const onPath = (name: string) => ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')].some((dir) => dir !== '' && existsSync(path.join(dir, name)))
  for (const [name, pkg] of [['slurmctld', 'slurm-wlm'], ['slurmd', 'slurm-wlm'], ['srun', 'slurm-wlm'], ['munged', 'munge'], ['sshd', 'openssh-server'], ['ssh', 'openssh-client']] as const) {
    if (!onPath(name)) missing.push(`${name} (${pkg})`)
  }
  return missing
}

/** false when the local cluster can run; else the reason to skip (and, under CI=true, a failing test says so). */
export function localClusterSkipReason(): false | string {
  const missing = localClusterMissing()
  if (missing.length === 0) return false
  const reason = `the local cluster needs ${missing.join(', ')} (apt-get install -y slurm-wlm munge openssh-server, as root); skipped`
  if (process.env.CI === 'true') test('the local cluster can run (required when CI=true)', () => assert.fail(`CI=true and ${reason.replace(/; skipped$/, '')}`))
  else console.log(`# SKIP ${reason}`)
  return reason
}

export interface LocalClusterRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs start or stop with the given state folder; never throws on a non-zero exit. */
export async function localCluster(action: 'start' | 'stop', dir: string, extraEnv: Record<string, string> = {}): Promise<LocalClusterRun> {
  try {
    const { stdout, stderr } = await run(path.join(LOCAL_CLUSTER_SCRIPTS, action), [], { env: { ...process.env, CAIRN_LOCAL_CLUSTER_DIR: dir, ...extraEnv }, timeout: 300_000 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(error) }
  }
}

/** A fresh state folder and a port base unlikely to be used by another test file running at the same time. */
export function newLocalClusterDir(): { dir: string; env: Record<string, string> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-local-cluster-test-'))
  const portBase = 20_000 + 10 * Math.floor(Math.random() * 2_000)
  // A loaded CI machine may take longer than start's default 90 s to bring the daemons up.
  return { dir, env: { CAIRN_LOCAL_CLUSTER_PORT_BASE: String(portBase), CAIRN_LOCAL_CLUSTER_TIMEOUT: '240' } }
}

export interface StartedLocalCluster {
  dir: string
  /** The cairn.yaml fragment start printed on its last line. */
  fragment: string
  /** What the env file next to the fragment exports. */
  slurmConf: string
}

/** deploy/local-cluster/start in a fresh folder of its own, stopped and removed after the test. */
export async function startLocalClusterFor(t: { after(fn: () => Promise<void>): void }): Promise<StartedLocalCluster> {
  const { dir, env } = newLocalClusterDir()
  t.after(async () => {
    await localCluster('stop', dir, env)
    rmSync(dir, { recursive: true, force: true })
  })
  const started = await localCluster('start', dir, env)
  assert.equal(started.code, 0, started.stderr)
  const fragment = started.stdout.trim().split('\n').at(-1)!
  assert.equal(fragment, path.join(dir, 'cairn.yaml'))
  const slurmConf = /^export SLURM_CONF=(\S+)$/m.exec(readFileSync(path.join(dir, 'env'), 'utf8'))?.[1]
  assert.ok(slurmConf, 'the env file sets SLURM_CONF')
  return { dir, fragment, slurmConf }
}

export interface SlurmCommands {
  /** A Slurm command's stdout (also when it fails, e.g. for a job Slurm no longer knows). */
  slurm(args: string[]): Promise<string>
  /** `scontrol show job`'s JobState (RUNNING, COMPLETED, CANCELLED ...), undefined for an unknown job. */
  jobState(jobId: string): Promise<string | undefined>
  /** The ids of every job Slurm knows, in any state. */
  allJobs(): Promise<string[]>
  /** The same jobs as [id, name, state] (squeue's %i %j %T). */
  jobTable(): Promise<string[][]>
}

/** Asks Slurm itself about the cluster of `slurmConf`, with its own commands on this machine. */
export function slurmCommands(slurmConf: string): SlurmCommands {
  const env = { ...process.env, SLURM_CONF: slurmConf }
  const slurm = (args: string[]) => run(args[0]!, args.slice(1), { env }).then((r) => r.stdout, (e: { stdout?: string }) => e.stdout ?? '')
  return {
    slurm,
    jobState: async (jobId) => /JobState=(\S+)/.exec(await slurm(['scontrol', 'show', 'job', '-o', jobId]))?.[1],
    allJobs: async () => (await slurm(['squeue', '-h', '-t', 'all', '-o', '%i'])).split('\n').filter(Boolean),
    jobTable: async () => (await slurm(['squeue', '-h', '-t', 'all', '-o', '%i %j %T'])).split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)),
  }
}
