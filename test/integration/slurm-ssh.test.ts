/**
 * The slurm executor submitting on a login node over SSH (`submit: { via: ssh }`), on the real local cluster
 * (deploy/local-cluster: slurmctld with nodes n1 and n2, sshd on 127.0.0.2 as the login node). This process
 * has no SLURM_CONF: every Slurm command runs on the login node with the SLURM_CONF of `submit.env`, as the
 * login user, and the job's script, output and artifacts travel over SFTP. Every job is checked through Slurm
 * itself (scontrol, squeue), not only through what the executor says.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import type { SlurmCluster } from '../../engine/config/config-types.ts'
import { loadConfig } from '../../engine/config/load-config.ts'
import type { JobHandle, JobSpec } from '../../engine/executors/executor.ts'
import { createSlurmExecutor } from '../../engine/executors/slurm.ts'
import type { SshHostSetting } from '../../engine/executors/ssh-connection.ts'
import { localClusterSkipReason, slurmCommands, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { collectJobEvents, pollUntil } from '../helpers/job-events.ts'

const run = promisify(execFile)
const skip = localClusterSkipReason()
const SLURM_MODULE = path.resolve(import.meta.dirname, '../../engine/executors/slurm.ts')

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Pids of the descendants of `pid` (from /proc). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), entry])
    } catch {
      // ended meanwhile
    }
  }
  const found: number[] = []
  const queue = [pid]
  while (queue.length > 0) for (const child of children.get(queue.shift()!) ?? []) found.push(child), queue.push(child)
  return found
}

test('slurm executor submitting over SSH on a login node of the local cluster', { skip, timeout: 600_000 }, async (t) => {
  const { dir, fragment, slurmConf } = await startLocalClusterFor(t)
  const loaded = loadConfig(fragment)
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics))
  const cluster = loaded.config.clusters!.local_slurm_ssh as SlurmCluster
  const sshHosts = loaded.config.ssh_hosts as Record<string, SshHostSetting>
  assert.equal(cluster.submit.via, 'ssh')
  assert.equal(process.env.SLURM_CONF, undefined, 'this process does not know the cluster: only the login node does')

  // Checks go through Slurm directly (on this machine, with the cluster's SLURM_CONF).
  const { slurm, jobState, allJobs } = slurmCommands(slurmConf)
  const jobUser = async (jobId: string) => /UserId=([^(\s]+)/.exec(await slurm(['scontrol', 'show', 'job', '-o', jobId]))?.[1]
  const executor = createSlurmExecutor(cluster, { name: 'local_slurm_ssh', sshHosts })
  t.after(() => executor.close?.())
  // The cluster's workdir belongs to the login user; the jobs' folders are made in it over SFTP.
  const work = path.join(cluster.workdir!, `exec-${process.pid}`)
  const local = mkdtempSync(path.join(dir, 'artifacts-'))

  const spec = (name: string, argv: string[], extra: Partial<JobSpec> = {}): JobSpec => ({
    argv, env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0, workdir: path.join(work, name), artifacts: [], artifactsDir: path.join(local, name), ...extra,
  })
  const collect = () => collectJobEvents(jobState)
  const waitFor = (what: string, check: () => boolean | Promise<boolean>, ms = 90_000) => pollUntil(what, check, ms)
  const sbatchCalls = () => executor.commands.calls.get('sbatch') ?? 0

  await t.test('a 2-node job submitted on the login node runs a rank on each node; its output and artifacts come back over SFTP', async () => {
    const seen = collect()
    const before = sbatchCalls()
    const begin = Date.now()
    const job = await executor.start(
      spec('two-node', ['sh', '-c', 'echo "node=$SLURMD_NODENAME rank=$RANK world=$WORLD_SIZE user=$(id -un) greeting=$GREETING"; echo "to stderr $RANK" >&2; if [ "$RANK" = 0 ]; then mkdir -p out; echo "model of $SLURMD_NODENAME" > out/model.txt; echo "{\\"auc\\": 0.5}" > metrics.json; fi'], {
        env: { GREETING: "it's $(not run)" }, artifacts: ['out/model.txt', 'metrics.json'],
      }),
      seen.options(),
    )
    const outcome = await job.done
    console.log(`# 2-node job over SSH: ${Date.now() - begin} ms from start to collected artifacts`)
    assert.equal(outcome.ok, true, JSON.stringify({ outcome, lines: seen.lines }))
    assert.equal(sbatchCalls() - before, 1)
    assert.equal(seen.states[0], 'PENDING', 'the job was held while its id was recorded')
    const handle = seen.handles[0] as JobHandle & { executor: 'slurm' }
    assert.equal(handle.cluster, 'local_slurm_ssh')
    assert.equal(await jobState(handle.jobId), 'COMPLETED')
    assert.equal(await jobUser(handle.jobId), 'cairn-ssh', 'submitted by the login user, on the login node')
    const ranks = seen.lines.filter((l) => l.stream === 'stdout' && l.line.startsWith('node='))
    assert.deepEqual(ranks.map((l) => `${l.rank}@${l.host}: ${l.line}`).sort(), [
      `0@n1: node=n1 rank=0 world=2 user=cairn-ssh greeting=it's $(not run)`,
      `1@n2: node=n2 rank=1 world=2 user=cairn-ssh greeting=it's $(not run)`,
    ])
    assert.deepEqual(seen.lines.filter((l) => l.stream === 'stderr' && l.rank >= 0).map((l) => `${l.rank}:${l.line}`).sort(), ['0:to stderr 0', '1:to stderr 1'])
    assert.ok(outcome.ok)
    assert.deepEqual(outcome.artifacts, [path.join(local, 'two-node', 'out', 'model.txt'), path.join(local, 'two-node', 'metrics.json')])
    assert.equal(readFileSync(outcome.artifacts[0]!, 'utf8'), 'model of n1\n')
    // The script and its env file were written on the login node, as the login user; the env file is private.
    const scripts = (await run('find', [path.join(work, 'two-node', '.cairn-slurm'), '-printf', '%f %u %m\n'])).stdout.trim().split('\n').sort()
    assert.ok(scripts.some((line) => /\.env cairn-ssh 600$/.test(line)), scripts.join('\n'))
    assert.ok(scripts.some((line) => /\.sh cairn-ssh 700$/.test(line)), scripts.join('\n'))
  })

  await t.test('hostile words never reach a shell, on the login node nor in the job; hostile options are never submitted', async () => {
    const marker = path.join(dir, `pwned-${process.pid}`)
    const words = [`$(touch ${marker})`, `; touch ${marker}`, `\`touch ${marker}\``, `a\ntouch ${marker}`, "'; touch " + marker + "; '", '--wrap=id', `"$(touch ${marker})"`]
    const seen = collect()
    const job = await executor.start(spec('hostile', ['sh', '-c', 'if [ "$RANK" = 0 ]; then for w in "$@"; do printf "%s\\0" "$w"; done > args.bin; fi', 'sh', ...words], { nodes: 1, env: { HOSTILE: words.join(' ') } }), seen.options())
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify(outcome))
    assert.deepEqual(readFileSync(path.join(work, 'hostile', 'args.bin'), 'utf8').split('\0').slice(0, -1), words)
    assert.equal(existsSync(marker), false)

    const before = sbatchCalls()
    const jobsBefore = await allJobs()
    for (const slurmOptions of [{ partition: 'debug --wrap=touch /tmp/x' }, { time: '1:00\n#SBATCH --wrap=id' }, { partition: '$(id)' }, { account: "x'; touch " + marker + "; '" }]) {
      const refused = await executor.start(spec('refused', ['true'], { slurm: slurmOptions }), collect().options())
      const result = await refused.done
      assert.equal(result.ok, false)
      assert.match(!result.ok ? result.message : '', /slurm: slurm\.(partition|time|account) must be .*nothing was submitted/)
    }
    // A workdir that is not a plain path is refused before anything reaches the login node.
    const badDir = await executor.start(spec('x', ['true'], { workdir: `${work}/$(touch ${marker})` }), collect().options())
    assert.match(((await badDir.done) as { message: string }).message, /workdir must be an absolute path/)
    assert.equal(sbatchCalls(), before, 'nothing was submitted')
    assert.deepEqual(await allJobs(), jobsBefore)
    assert.equal(existsSync(marker), false)
  })

  for (const reason of ['cancelled', 'timeout'] as const) {
    await t.test(`${reason} -> scancel over SSH, confirmed: the job is CANCELLED and gone from squeue`, async () => {
      const seen = collect()
      const controller = new AbortController()
      const job = await executor.start(spec(`stop-${reason}`, ['sh', '-c', 'echo started; sleep 300']), seen.options(controller.signal))
      await waitFor('both ranks running', () => seen.lines.filter((l) => l.line === 'started').length === 2)
      const jobId = (job.handle as { jobId: string }).jobId
      const begin = Date.now()
      controller.abort({ cause: reason, message: `test ${reason}` })
      const outcome = await job.done
      const elapsed = Date.now() - begin
      assert.equal(!outcome.ok && outcome.kind, reason, JSON.stringify(outcome))
      assert.equal(await jobState(jobId), 'CANCELLED')
      assert.equal((await slurm(['squeue', '-h', '-j', jobId, '-o', '%i'])).trim(), '', 'no longer pending or running')
      assert.ok(elapsed < 15_000, `confirmed after ${elapsed} ms`)
      console.log(`# ${reason} over SSH: job ${jobId} CANCELLED and confirmed ${elapsed} ms after the abort`)
    })
  }

  await t.test('a worker killed mid-job: another re-attaches over SSH by job id without resubmitting; one sbatch, one job', async () => {
    const workdir = path.join(work, 'reattach')
    const jobsBefore = new Set(await allJobs())
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { createSlurmExecutor } from ${JSON.stringify(SLURM_MODULE)}
      const executor = createSlurmExecutor(${JSON.stringify(cluster)}, { name: 'local_slurm_ssh', sshHosts: ${JSON.stringify(sshHosts)} })
      await executor.start({ argv: ['sh', '-c', 'echo begin-$RANK; while [ ! -e go-on ]; do sleep 0.2; done; echo end-$RANK; [ "$RANK" = 0 ] && echo ok > done.txt; true'], env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0,
        workdir: ${JSON.stringify(workdir)}, artifacts: [], artifactsDir: '/nonexistent' },
        { onLine: (l) => console.log(JSON.stringify(l)), record: async (h) => console.log('HANDLE ' + JSON.stringify(h)), signal: new AbortController().signal })
      console.log('SBATCH ' + executor.commands.calls.get('sbatch'))
      setInterval(() => {}, 1000)
    `], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const exited = new Promise((resolve) => child.on('exit', resolve))
    t.after(() => void child.kill('SIGKILL'))
    await waitFor('the first worker to see both ranks running', () => out.includes('"line":"begin-0"') && out.includes('"line":"begin-1"'))
    child.kill('SIGKILL')
    await exited
    assert.match(out, /^SBATCH 1$/m, 'the first worker submitted once')
    // The last handle recorded: the job's id (the first one is its name, recorded before sbatch).
    const handle = JSON.parse([...out.matchAll(/HANDLE (.*)/g)].at(-1)?.[1] ?? 'null') as JobHandle & { executor: 'slurm' }
    assert.equal(handle.executor, 'slurm')
    assert.equal(await jobState(handle.jobId), 'RUNNING', 'the job outlived its worker')

    const before = sbatchCalls()
    const seen = collect()
    const job = await executor.reattach(handle, { onLine: seen.options().onLine, signal: new AbortController().signal, spec: spec('reattach', ['x'], { artifacts: ['done.txt'] }) })
    await waitFor('the re-attached output', () => seen.lines.some((l) => l.line === 'begin-1'))
    writeFileSync(path.join(workdir, 'go-on'), '')
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify({ outcome, lines: seen.lines }))
    assert.ok(seen.lines.some((l) => l.line.startsWith(`re-attached to Slurm job ${handle.jobId} (RUNNING) through the login node local_login (cairn-ssh@127.0.0.2:`)), JSON.stringify(seen.lines))
    assert.deepEqual(seen.lines.filter((l) => l.line.startsWith('end-')).map((l) => `${l.host}:${l.line}`).sort(), ['n1:end-0', 'n2:end-1'])
    assert.equal(readFileSync(path.join(local, 'reattach', 'done.txt'), 'utf8'), 'ok\n')
    assert.equal(sbatchCalls(), before, 're-attaching submitted nothing')
    assert.deepEqual((await allJobs()).filter((id) => !jobsBefore.has(id)), [handle.jobId], 'exactly one job for the attempt')
  })

  await t.test('the login node unreachable for a while: squeue failures are reported and retried, the job is not taken as dead', async () => {
    const sshdPid = Number(readFileSync(path.join(dir, 'ssh', '127.0.0.2', 'sshd.pid'), 'utf8').trim())
    // A short handshake timeout, so that the outage shows within seconds (another cluster name: its own watcher).
    const impatient = createSlurmExecutor(cluster, { name: 'local_slurm_ssh_impatient', sshHosts, connectTimeoutMs: 2_000, timing: { minIntervalMs: 250, maxIntervalMs: 1_000, factor: 1.3 } })
    const workdir = path.join(work, 'outage')
    const seen = collect()
    const job = await impatient.start(spec('outage', ['sh', '-c', 'echo begin-$RANK; while [ ! -e go-on ]; do sleep 0.2; done; echo end-$RANK'], { nodes: 1 }), seen.options())
    t.after(async () => {
      await job.cancel('cancelled').catch(() => undefined)
      await impatient.close?.()
    })
    await waitFor('the rank running', () => seen.lines.some((l) => l.line === 'begin-0'))
    const jobId = (job.handle as { jobId: string }).jobId
    // The login node stops answering: its sshd is frozen and the open connection's session killed.
    process.kill(sshdPid, 'SIGSTOP')
    try {
      for (const pid of descendants(sshdPid)) process.kill(pid, 'SIGKILL')
      // The open connection fails its next command, new ones time out in the handshake: either is reported.
      await waitFor('the squeue failure in the log', () => seen.lines.some((l) => l.rank === -1 && /the login node local_login \(cairn-ssh@127\.0\.0\.2:\d+\).*; the job is not taken as ended/.test(l.line)), 60_000)
      assert.equal(await jobState(jobId), 'RUNNING')
      let settled = false
      void job.done.then(() => (settled = true))
      await sleep(3_000)
      assert.equal(settled, false, 'the job is still followed while the login node is away')
      assert.ok(seen.lines.filter((l) => l.rank === -1 && /not taken as ended/.test(l.line)).length === 1, 'reported once per outage')
    } finally {
      process.kill(sshdPid, 'SIGCONT')
    }
    writeFileSync(path.join(workdir, 'go-on'), '')
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify({ outcome, lines: seen.lines }))
    assert.ok(seen.lines.some((l) => l.rank === -1 && /squeue on the login node local_login .* answers again/.test(l.line)), JSON.stringify(seen.lines))
    assert.ok(seen.lines.some((l) => l.line === 'end-0'))
  })

  await t.test('an unknown login node host key is refused, naming the host and its fingerprint; nothing is submitted', async () => {
    const emptyKnownHosts = path.join(dir, 'known_hosts.empty')
    writeFileSync(emptyKnownHosts, '')
    const stranger = createSlurmExecutor(cluster, { name: 'local_slurm_ssh', sshHosts: { local_login: { ...sshHosts.local_login!, known_hosts_file: emptyKnownHosts } } })
    const jobsBefore = await allJobs()
    const job = await stranger.start(spec('stranger', ['sh', '-c', 'touch ran']), collect().options())
    const outcome = await job.done
    assert.equal(outcome.ok, false)
    assert.ok(!outcome.ok)
    assert.equal(outcome.kind, 'infrastructure')
    assert.equal(outcome.retryable, false)
    assert.match(outcome.message, /host key of \[127\.0\.0\.2\]:\d+ is unknown: it presented ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}.*nothing was submitted/)
    assert.equal(stranger.commands.calls.get('sbatch') ?? 0, 0)
    assert.deepEqual(await allJobs(), jobsBefore)
    assert.equal(existsSync(path.join(work, 'stranger')), false, 'not even the job folder was made')
    await stranger.close?.()
  })

  await t.test('sbatch refusing the job on the login node: its exit code and stderr, naming the login node', async () => {
    const outcome = await (await executor.start(spec('nosuch', ['true'], { slurm: { partition: 'nosuch' } }), collect().options())).done
    assert.equal(outcome.ok, false)
    assert.match(!outcome.ok ? outcome.message : '', /^slurm: sbatch on the login node local_login \(cairn-ssh@127\.0\.0\.2:\d+\) failed \(exit 1\): sbatch: error: .*[Pp]artition/)
  })

  await t.test('a cluster that names no ssh_hosts entry is refused with a message, nothing submitted', async () => {
    const orphan = createSlurmExecutor({ ...cluster, submit: { ...cluster.submit, host: 'nowhere' } }, { name: 'lost', sshHosts })
    const outcome = await (await orphan.start(spec('lost', ['true']), collect().options())).done
    assert.match(!outcome.ok ? outcome.message : '', /cluster lost submits over SSH to "nowhere", which is not an entry of ssh_hosts \(defined: local_login\); nothing was submitted/)
  })
})
