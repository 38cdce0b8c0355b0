/**
 * SSH executor latency (issue 11, acceptance 5): a 2-host `true` job through cairn's ssh executor beside
 * OpenSSH running `true` on the same two hosts in parallel, in the same run, on the local cluster
 * (deploy/local-cluster, started and stopped here; needs root and openssh-server).
 *   warm: cairn reusing its one connection per host  vs  `ssh` through a ControlMaster socket
 *         (-o ControlMaster=auto -o ControlPath=... -o ControlPersist=60), master already up;
 *   cold: a fresh executor (handshake + key auth per job)  vs  plain `ssh` per job.
 * A cairn job is more than an exec: the wrapper announces its process group, waits for record() and `go`,
 * then runs the program in the rank's workdir with the rank environment. Prints figures, never fails.
 * `npm run bench:ssh [-- ROUNDS]` or `node bench/ssh.ts [ROUNDS]` (default 50).
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { JobSpec } from '../engine/executors/executor.ts'
import { createSshExecutor, type SshClusterSetting } from '../engine/executors/ssh.ts'
import { localCluster, localClusterMissing, newLocalClusterDir } from '../test/helpers/local-cluster.ts'

const ROUNDS = Number(process.argv[2] ?? 50)
const HOSTS = ['127.0.0.2', '127.0.0.3']
const runFile = promisify(execFile)

const missing = localClusterMissing()
if (missing.length > 0) {
  console.log(`bench/ssh: the local cluster needs ${missing.join(', ')}; nothing measured`)
  process.exit(0)
}

const { dir, env } = newLocalClusterDir()
const started = await localCluster('start', dir, env)
if (started.code !== 0) {
  console.log(`bench/ssh: deploy/local-cluster/start failed:\n${started.stderr}`)
  process.exit(0)
}
const port = Number(/^SSH_PORT=(\d+)$/m.exec(readFileSync(path.join(dir, 'ports'), 'utf8'))![1])
const key = path.join(dir, 'ssh/client_key')
const knownHosts = path.join(dir, 'ssh/known_hosts')
const controlDir = mkdtempSync(path.join(tmpdir(), 'cairn-bench-ssh-'))
const setting: SshClusterSetting = { name: 'local_ssh', known_hosts_file: knownHosts, hosts: HOSTS.map((host) => ({ host, port, user: 'cairn-ssh', identity_file: key })) }
const job: JobSpec = { argv: ['true'], env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0, workdir: path.join(dir, 'work', 'ssh', 'bench'), artifacts: [], artifactsDir: path.join(controlDir, 'artifacts') }
const jobOptions = { onLine: () => {}, record: async () => {}, signal: new AbortController().signal }

function sshArgs(host: string, master: boolean): string[] {
  const args = ['-i', key, '-p', String(port), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes']
  if (master) args.push('-o', 'ControlMaster=auto', '-o', `ControlPath=${path.join(controlDir, `cm-${host}`)}`, '-o', 'ControlPersist=60')
  return [...args, `cairn-ssh@${host}`, 'true']
}

function ssh(host: string, master: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', sshArgs(host, master), { stdio: 'ignore' })
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ssh ${host} exited ${code}`))))
  })
}

async function time(action: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await action()
  return performance.now() - t0
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return `p50 ${at(0.5).toFixed(1).padStart(6)} ms   p90 ${at(0.9).toFixed(1).padStart(6)} ms   min ${sorted[0]!.toFixed(1).padStart(6)} ms`
}

const warm = createSshExecutor(setting)
try {
  // Warm-ups: connections and masters up, the workdir created.
  for (let i = 0; i < 3; i++) {
    const outcome = await (await warm.start(job, jobOptions)).done
    if (!outcome.ok) throw new Error(`cairn job failed: ${outcome.message}`)
    await Promise.all(HOSTS.map((host) => ssh(host, true)))
  }
  const samples = { cairnWarm: [] as number[], sshMaster: [] as number[], cairnCold: [] as number[], sshCold: [] as number[] }
  // Interleaved so that other load on the machine falls on both sides alike.
  for (let i = 0; i < ROUNDS; i++) {
    samples.cairnWarm.push(await time(async () => void (await (await warm.start(job, jobOptions)).done)))
    samples.sshMaster.push(await time(async () => void (await Promise.all(HOSTS.map((host) => ssh(host, true))))))
    if (i % 5 === 0) {
      samples.cairnCold.push(
        await time(async () => {
          const cold = createSshExecutor(setting)
          await (await cold.start(job, jobOptions)).done
          await cold.close()
        }),
      )
      samples.sshCold.push(await time(async () => void (await Promise.all(HOSTS.map((host) => ssh(host, false))))))
    }
  }
  console.log(`2-host \`true\` job, ${ROUNDS} rounds (cold: ${samples.cairnCold.length}), hosts ${HOSTS.join(' ')} port ${port}`)
  console.log(`  warm  cairn ssh executor (1 ssh2 connection per host)  ${stats(samples.cairnWarm)}`)
  console.log(`  warm  OpenSSH with ControlMaster, both hosts parallel  ${stats(samples.sshMaster)}`)
  console.log(`  cold  cairn, new connections per job                   ${stats(samples.cairnCold)}`)
  console.log(`  cold  OpenSSH, new connection per job                  ${stats(samples.sshCold)}`)
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  console.log(`  ratio warm cairn / ControlMaster (p50): ${(median(samples.cairnWarm) / median(samples.sshMaster)).toFixed(2)}x`)
} finally {
  await warm.close()
  for (const host of HOSTS) await runFile('ssh', ['-o', `ControlPath=${path.join(controlDir, `cm-${host}`)}`, '-O', 'exit', `cairn-ssh@${host}`]).catch(() => {})
  await localCluster('stop', dir, env)
  rmSync(controlDir, { recursive: true, force: true })
  rmSync(dir, { recursive: true, force: true })
}
