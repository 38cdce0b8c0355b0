/**
 * Slurm executor figures (issue 11, acceptance 5), on a local cluster this script starts and stops itself
 * (deploy/local-cluster, its own state folder and ports; needs root and slurm-wlm, munge):
 *   1. a 2-node `true` job through the executor (submit held, record, release, follow with the watcher,
 *      output tailed) against `sbatch --wait` of the very same script, interleaved rounds, medians;
 *      and against the tightest bare loop (sbatch, then scontrol every 100 ms); and the same job through the
 *      executor submitting on the login node over SSH (`local_slurm_ssh` of the fragment);
 *   2. `squeue` calls per minute while the executor follows 50 concurrent jobs (2 run, 48 pend), against
 *      the goal of one call per poll interval per worker, and what one squeue per job would cost.
 * Prints figures, never fails. `npm run bench:slurm [-- ROUNDS [WINDOW_SECONDS]]`.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { JobSpec } from '../engine/executors/executor.ts'
import type { SlurmCluster } from '../engine/config/config-types.ts'
import { loadConfig } from '../engine/config/load-config.ts'
import { createSlurmExecutor } from '../engine/executors/slurm.ts'
import type { SshHostSetting } from '../engine/executors/ssh-connection.ts'
import { buildSlurmScript } from '../engine/executors/slurm-script.ts'
import { localCluster, newLocalClusterDir } from '../test/helpers/local-cluster.ts'

const ROUNDS = Number(process.argv[2] ?? 5)
const WINDOW_SECONDS = Number(process.argv[3] ?? 60)
const run = promisify(execFile)

const { dir, env: clusterEnv } = newLocalClusterDir()
const started = await localCluster('start', dir, clusterEnv)
if (started.code !== 0) {
  console.log(`cannot start the local cluster: ${started.stderr.trim()}`)
  process.exit(0)
}
const env = { ...process.env, SLURM_CONF: path.join(dir, 'slurm/slurm.conf') }
try {
  const executor = createSlurmExecutor({ kind: 'slurm', submit: { via: 'local' }, partition: 'debug' }, { name: 'bench', env })
  const work = mkdtempSync(path.join(dir, 'work', 'bench-'))
  const fragment = loadConfig(started.stdout.trim().split('\n').at(-1)!)
  const sshCluster = fragment.config.clusters?.local_slurm_ssh as SlurmCluster
  const overSsh = createSlurmExecutor(sshCluster, { name: 'bench_ssh', sshHosts: fragment.config.ssh_hosts as Record<string, SshHostSetting> })
  const spec = (name: string, argv: string[], nodes: number): JobSpec => ({ argv, env: {}, nodes, tasksPerNode: 1, gpusPerNode: 0, workdir: path.join(work, name), artifacts: [], artifactsDir: path.join(work, 'artifacts') })
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

  // ---- 1. a 2-node `true` job ----------------------------------------------------------------------------
  // A 2-node job waits for both nodes to finish cleaning up after the previous one (state `comp`): every
  // measurement starts with both nodes idle, so that what is compared is the tool, not the node turnover.
  const waitIdle = async () => {
    for (;;) {
      const states = (await run('sinfo', ['-h', '-N', '-p', 'debug', '-o', '%t'], { env })).stdout.split('\n').filter(Boolean)
      if (states.length > 0 && states.every((state) => state === 'idle')) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const viaCairn: number[] = []
  const viaSbatch: number[] = []
  const viaPolling: number[] = []
  const viaSsh: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    await waitIdle()
    let t0 = performance.now()
    const job = await executor.start(spec(`cairn-${round}`, ['true'], 2), { onLine: () => undefined, record: async () => undefined, signal: new AbortController().signal })
    const outcome = await job.done
    viaCairn.push(performance.now() - t0)
    if (!outcome.ok) console.log(`round ${round}: the executor's job failed: ${outcome.message}`)

    const built = buildSlurmScript(spec(`sbatch-${round}`, ['true'], 2), `bare-${round}`)
    if (!built.ok) throw new Error(built.message)
    mkdirSync(built.value.files.dir, { recursive: true })
    writeFileSync(built.value.files.env, built.value.envText)
    writeFileSync(built.value.files.script, built.value.text)
    await waitIdle()
    t0 = performance.now()
    await run('sbatch', ['--wait', built.value.files.script], { env })
    viaSbatch.push(performance.now() - t0)

    // The tightest bare loop: submit, then ask scontrol every 100 ms until the job ended.
    await waitIdle()
    t0 = performance.now()
    const id = (await run('sbatch', ['--parsable', built.value.files.script], { env })).stdout.trim().split(';')[0] as string
    for (;;) {
      const shown = await run('scontrol', ['show', 'job', '-o', id], { env }).then((r) => r.stdout, () => '')
      if (/JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT)/.test(shown)) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    viaPolling.push(performance.now() - t0)

    // The executor with sbatch, squeue and scontrol on the login node over SSH, the script and output over SFTP.
    await waitIdle()
    t0 = performance.now()
    const remote = await overSsh.start({ ...spec(`ssh-${round}`, ['true'], 2), workdir: path.join(sshCluster.workdir!, `bench-${process.pid}`, `ssh-${round}`) }, { onLine: () => undefined, record: async () => undefined, signal: new AbortController().signal })
    const remoteOutcome = await remote.done
    viaSsh.push(performance.now() - t0)
    if (!remoteOutcome.ok) console.log(`round ${round}: the job over SSH failed: ${remoteOutcome.message}`)
  }
  await overSsh.close?.()
  const cairnMs = median(viaCairn)
  const sbatchMs = median(viaSbatch)
  console.log(`2-node true job, median of ${ROUNDS}: executor ${cairnMs.toFixed(0)} ms, sbatch --wait ${sbatchMs.toFixed(0)} ms, ratio ${(cairnMs / sbatchMs).toFixed(2)}x (goal <= 1.5x)`)
  console.log(`  against sbatch + scontrol every 100 ms: ${median(viaPolling).toFixed(0)} ms, ratio ${(cairnMs / median(viaPolling)).toFixed(2)}x`)
  const best = (values: number[]) => Math.min(...values)
  console.log(`  best rounds: executor ${best(viaCairn).toFixed(0)} ms, sbatch --wait ${best(viaSbatch).toFixed(0)} ms, sbatch + scontrol every 100 ms ${best(viaPolling).toFixed(0)} ms (a job's start waits for slurmctld's scheduling pass, 0.1-3 s here whatever submits it)`)
  console.log(`  sbatch + scontrol rounds: ${viaPolling.map((ms) => ms.toFixed(0)).join(' ')} ms`)
  console.log(`  executor submitting over SSH on the login node: median ${median(viaSsh).toFixed(0)} ms, ratio ${(median(viaSsh) / sbatchMs).toFixed(2)}x sbatch --wait; rounds ${viaSsh.map((ms) => ms.toFixed(0)).join(' ')} ms`)
  console.log(`  executor rounds: ${viaCairn.map((ms) => ms.toFixed(0)).join(' ')} ms; sbatch --wait rounds: ${viaSbatch.map((ms) => ms.toFixed(0)).join(' ')} ms`)

  // ---- 2. squeue calls with 50 concurrent jobs -----------------------------------------------------------
  const controller = new AbortController()
  const jobs = []
  for (let i = 0; i < 50; i++) {
    jobs.push(await executor.start(spec(`many-${i}`, ['sleep', '600'], 1), { onLine: () => undefined, record: async () => undefined, signal: controller.signal }))
  }
  const before = { squeue: executor.commands.calls.get('squeue') ?? 0, scontrol: executor.commands.calls.get('scontrol') ?? 0 }
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, WINDOW_SECONDS * 1000))
  const minutes = (performance.now() - t0) / 60_000
  const squeueCalls = (executor.commands.calls.get('squeue') ?? 0) - before.squeue
  const scontrolCalls = (executor.commands.calls.get('scontrol') ?? 0) - before.scontrol
  const running = (await run('squeue', ['-h', '-t', 'running', '-o', '%i'], { env })).stdout.split('\n').filter(Boolean).length
  console.log(`50 concurrent jobs (${running} running, the rest pending), ${WINDOW_SECONDS} s window: ${(squeueCalls / minutes).toFixed(1)} squeue calls/min (one per poll interval, 0.25 s growing 1.3x to 10 s), ${(scontrolCalls / minutes).toFixed(1)} scontrol calls/min; one squeue per job per interval would be ${((squeueCalls * 50) / minutes).toFixed(0)}/min`)
  controller.abort({ cause: 'cancelled', message: 'benchmark done' })
  await Promise.all(jobs.map((job) => job.done))
} finally {
  await localCluster('stop', dir, clusterEnv)
  await rm(dir, { recursive: true, force: true })
}
