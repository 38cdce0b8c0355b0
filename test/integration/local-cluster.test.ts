/**
 * deploy/local-cluster/start and stop with real daemons: the fragment start prints validates as cairn.yaml, a
 * 2-node srun runs one task on each node, both SSH hosts run a command with the client key and refuse a client
 * that does not know (or knows another) host key, a second start changes nothing, and stop leaves none of the
 * processes start started (twice in a row).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../../engine/config/load-config.ts'
import { LOCAL_CLUSTER_SCRIPTS, localCluster, localClusterSkipReason, newLocalClusterDir } from '../helpers/local-cluster.ts'

const run = promisify(execFile)
const skip = localClusterSkipReason()

/** The pid files start writes, relative to the state folder. */
const PID_FILES = ['munge/munged.pid', 'slurm/slurmctld.pid', 'slurm/slurmd-n1.pid', 'slurm/slurmd-n2.pid', 'ssh/127.0.0.2/sshd.pid', 'ssh/127.0.0.3/sshd.pid']

function readPids(dir: string): Map<string, number> {
  return new Map(PID_FILES.map((file) => [file, Number(readFileSync(path.join(dir, file), 'utf8').trim())]))
}

/** Alive and not a zombie (this machine's init may not reap the daemons it inherits). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return ''
  }
}

/** Live processes whose command line names a path in the state folder (what start started, and nothing else). */
function processesOf(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ')
    } catch {
      continue
    }
    if (cmdline.includes(`${dir}/`) && running(Number(entry))) pids.push(Number(entry))
  }
  return pids.sort((a, b) => a - b)
}

async function ssh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('ssh', args, { timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(error) }
  }
}

test('deploy/local-cluster: start, use, start again, stop, stop again', { skip, timeout: 600_000 }, async (t) => {
  const { dir, env } = newLocalClusterDir()
  t.after(async () => {
    // Always, whatever failed above: no daemon may outlive the test.
    const stopped = await localCluster('stop', dir, env)
    if (stopped.code !== 0) console.log(`# stop after the test failed: ${stopped.stderr}`)
    rmSync(dir, { recursive: true, force: true })
  })

  // As another user: from a copy anyone can read (the checkout itself may sit in a private home folder).
  const copy = path.join(dir, 'scripts')
  mkdirSync(copy)
  for (const file of ['start', 'common.sh']) copyFileSync(path.join(LOCAL_CLUSTER_SCRIPTS, file), path.join(copy, file))
  chmodSync(dir, 0o755)
  chmodSync(copy, 0o755)
  chmodSync(path.join(copy, 'start'), 0o755)
  chmodSync(path.join(copy, 'common.sh'), 0o644)
  const notRoot = await run('runuser', ['-u', 'nobody', '--', path.join(copy, 'start')], { env: { ...process.env, CAIRN_LOCAL_CLUSTER_DIR: path.join(dir, 'not-root') } }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  )
  assert.equal(notRoot.code, 1)
  assert.match(notRoot.stderr, /must run as root/)

  const started = Date.now()
  const first = await localCluster('start', dir, env)
  assert.equal(first.code, 0, first.stderr)
  console.log(`# start took ${Date.now() - started} ms`)
  const fragment = first.stdout.trimEnd().split('\n').at(-1)!
  assert.ok(path.isAbsolute(fragment) && existsSync(fragment), `last line is the fragment's path: ${fragment}`)

  // The fragment, as a cairn.yaml of its own, passes the configuration validator.
  const configFile = path.join(dir, 'check', 'cairn.yaml')
  mkdirSync(path.dirname(configFile))
  copyFileSync(fragment, configFile)
  const loaded = loadConfig(configFile)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  const slurmCluster = loaded.config.clusters?.local_slurm
  const sshCluster = loaded.config.clusters?.local_ssh
  assert.equal(slurmCluster?.kind, 'slurm')
  assert.ok(sshCluster?.kind === 'ssh')
  assert.deepEqual(sshCluster.hosts.map((h) => h.host), ['127.0.0.2', '127.0.0.3'])

  // Slurm: one task on each node.
  const slurmEnv = { ...process.env, SLURM_CONF: path.join(dir, 'slurm', 'slurm.conf') }
  const srun = await run('srun', ['-N2', '-l', 'printenv', 'SLURMD_NODENAME'], { env: slurmEnv, timeout: 120_000 })
  assert.deepEqual(srun.stdout.trim().split('\n').map((line) => line.trim()).sort(), ['0: n1', '1: n2'])

  // SSH: both hosts, key auth, host keys checked against the fragment's known_hosts file.
  const sshArgs = (host: (typeof sshCluster.hosts)[number], knownHosts: string) => [
    '-i', host.identity_file!, '-p', String(host.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20',
    `${host.user}@${host.host}`, 'echo ok',
  ]
  for (const host of sshCluster.hosts) {
    const result = await ssh(sshArgs(host, host.known_hosts_file!))
    assert.equal(result.code, 0, `${host.host}: ${result.stderr}`)
    assert.equal(result.stdout, 'ok\n')
  }
  // An unknown host key (empty known_hosts) and a changed one (the other host's key under this name) are refused.
  const [hostA, hostB] = sshCluster.hosts
  const emptyKnownHosts = path.join(dir, 'check', 'known_hosts.empty')
  writeFileSync(emptyKnownHosts, '')
  const unknown = await ssh(sshArgs(hostA!, emptyKnownHosts))
  assert.equal(unknown.code, 255)
  assert.match(unknown.stderr, /Host key verification failed/)
  const swapped = path.join(dir, 'check', 'known_hosts.swapped')
  const keyOfB = readFileSync(hostB!.known_hosts_file!, 'utf8').split('\n').find((line) => line.startsWith(`[${hostB!.host}]`))!
  writeFileSync(swapped, keyOfB.replace(`[${hostB!.host}]`, `[${hostA!.host}]`) + '\n')
  const changed = await ssh(sshArgs(hostA!, swapped))
  assert.equal(changed.code, 255)
  assert.match(changed.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)

  // The Slurm cluster reached through the login node (local_slurm_ssh): its commands run there, over SSH, with
  // the SLURM_CONF of submit.env.
  const slurmOverSsh = loaded.config.clusters?.local_slurm_ssh
  assert.ok(slurmOverSsh?.kind === 'slurm')
  assert.equal(slurmOverSsh.submit.via, 'ssh')
  assert.equal(slurmOverSsh.submit.env?.SLURM_CONF, path.join(dir, 'slurm', 'slurm.conf'))
  const login = loaded.config.ssh_hosts?.[slurmOverSsh.submit.host!]
  assert.ok(login)
  const onLogin = await ssh([...sshArgs({ ...login, address: undefined } as (typeof sshCluster.hosts)[number], login.known_hosts_file).slice(0, -1), `env SLURM_CONF=${slurmOverSsh.submit.env!.SLURM_CONF} sinfo -h -N -o %N`])
  assert.equal(onLogin.code, 0, onLogin.stderr)
  assert.deepEqual([...new Set(onLogin.stdout.trim().split('\n'))].sort(), ['n1', 'n2'])

  // Start again: the same daemons, the same fragment.
  const pids = readPids(dir)
  const processes = processesOf(dir)
  assert.ok(processes.length >= PID_FILES.length, `processes of the cluster: ${processes.join(' ')}`)
  for (const [file, pid] of pids) assert.ok(running(pid), `${file}: ${pid} runs`)
  const second = await localCluster('start', dir, env)
  assert.equal(second.code, 0, second.stderr)
  assert.equal(second.stdout.trimEnd().split('\n').at(-1), fragment)
  assert.deepEqual(readPids(dir), pids)
  const describe = (list: number[]) => list.map((pid) => { try { return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}` } catch { return `${pid} gone` } }).join('\n')
  // start's readiness probe of each sshd opens a connection whose handler exits a moment later: poll.
  const deadline = Date.now() + 30_000
  while (processesOf(dir).join() !== processes.join() && Date.now() < deadline) await sleep(200)
  assert.equal(describe(processesOf(dir)), describe(processes))

  // A crashed daemon is started again by the next start; the others are left as they are.
  process.kill(pids.get('slurm/slurmd-n2.pid')!, 'SIGKILL')
  process.kill(pids.get('ssh/127.0.0.3/sshd.pid')!, 'SIGKILL')
  const third = await localCluster('start', dir, env)
  assert.equal(third.code, 0, third.stderr)
  const restarted = readPids(dir)
  for (const [file, pid] of pids) {
    if (file === 'slurm/slurmd-n2.pid' || file === 'ssh/127.0.0.3/sshd.pid') assert.notEqual(restarted.get(file), pid, file)
    else assert.equal(restarted.get(file), pid, file)
    assert.ok(running(restarted.get(file)!), `${file} runs`)
  }
  const hostB2 = await ssh(sshArgs(hostB!, hostB!.known_hosts_file!))
  assert.equal(hostB2.stdout, 'ok\n', hostB2.stderr)

  // A job still running when the cluster stops is cancelled: its tasks do not outlive the cluster.
  const marker = String(600 + Math.floor(Math.random() * 10_000))
  const job = spawn('srun', ['-N2', 'sleep', marker], { env: slurmEnv, stdio: 'ignore' })
  const jobExited = new Promise((resolve) => job.once('exit', resolve))
  const isTask = (pid: number) => running(pid) && /^(\S*\/)?sleep /.test(readCmdline(pid)) && readCmdline(pid).endsWith(` ${marker} `)
  const tasksOf = () => readdirSync('/proc').filter((e) => /^\d+$/.test(e) && isTask(Number(e)))
  const jobDeadline = Date.now() + 60_000
  while (tasksOf().length < 2 && Date.now() < jobDeadline) await sleep(200)
  assert.equal(tasksOf().length, 2, 'one task on each node')

  // Stop: nothing start started is left, and its pid files are gone; a second stop is fine.
  const stopped = Date.now()
  const stop = await localCluster('stop', dir, env)
  assert.equal(stop.code, 0, stop.stderr)
  console.log(`# stop took ${Date.now() - stopped} ms`)
  for (const [file, pid] of restarted) {
    assert.ok(!running(pid), `${file}: ${pid} stopped`)
    assert.ok(!existsSync(path.join(dir, file)), `${file} removed`)
  }
  assert.deepEqual(processesOf(dir), [])
  assert.deepEqual(tasksOf(), [])
  await jobExited
  const again = await localCluster('stop', dir, env)
  assert.equal(again.code, 0, again.stderr)

  // After a crash of every daemon, stop exits 0 and removes the stale pid files; start then works again.
  const fourth = await localCluster('start', dir, env)
  assert.equal(fourth.code, 0, fourth.stderr)
  const crashed = readPids(dir)
  for (const pid of crashed.values()) process.kill(pid, 'SIGKILL')
  const afterCrash = await localCluster('stop', dir, env)
  assert.equal(afterCrash.code, 0, afterCrash.stderr)
  for (const file of PID_FILES) assert.ok(!existsSync(path.join(dir, file)), `${file} removed`)
  assert.deepEqual(processesOf(dir), [])
})
