/**
 * The ssh executor on the real local cluster (two sshd hosts on 127.0.0.2 and 127.0.0.3): a 2-host job with
 * the rank environment and both hosts in its lines, the program held back until the handle is recorded,
 * hostile argv words received byte for byte, unknown / changed host keys refused with nothing run, hashed
 * known_hosts accepted, cancel / timeout / a failing rank / a dropped connection leaving no process on any
 * host, artifacts fetched by SFTP, and re-attach by pgid.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { JobSpec, RankLine, RunningJob, StartOptions } from '../../engine/executors/executor.ts'
import { createSshExecutor, type SshClusterSetting, type SshExecutor } from '../../engine/executors/ssh.ts'
import { connectSsh } from '../../engine/executors/ssh-connection.ts'
import { freeRendezvousPort } from '../../engine/executors/ssh-job-parts.ts'
import { localCluster, localClusterSkipReason, newLocalClusterDir } from '../helpers/local-cluster.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { closeServer, listenInRange } from '../helpers/ports.ts'

const run = promisify(execFile)
const skip = localClusterSkipReason()
const HOSTS = ['127.0.0.2', '127.0.0.3']

let dir = ''
let env: Record<string, string> = {}
let port = 0
let work = ''
let scratch = ''
const executors: SshExecutor[] = []

function cluster(knownHosts = path.join(dir, 'ssh/known_hosts'), withHostFile = false): SshClusterSetting {
  return {
    name: 'local_ssh',
    known_hosts_file: knownHosts,
    hosts: HOSTS.map((host) => ({ host, port, user: 'cairn-ssh', identity_file: path.join(dir, 'ssh/client_key'), ...(withHostFile ? { known_hosts_file: knownHosts } : {}) })),
  }
}

function executor(setting = cluster()): SshExecutor {
  const created = createSshExecutor(setting, { killGraceMs: 1_000, followIntervalMs: 200 })
  executors.push(created)
  return created
}

let jobCounter = 0
function spec(argv: string[], extra: Partial<JobSpec> = {}): JobSpec {
  jobCounter++
  return { argv, env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0, workdir: path.join(work, `job-${jobCounter}`), artifacts: [], artifactsDir: path.join(scratch, `artifacts-${jobCounter}`), ...extra }
}

/** Every process group a test started, killed in after() should a failing test leave one behind. */
const startedGroups = new Set<number>()

function options(lines: RankLine[] = [], extra: Partial<StartOptions> = {}): StartOptions {
  const record = extra.record ?? (async () => {})
  return {
    onLine: (line) => void lines.push(line),
    signal: new AbortController().signal,
    ...extra,
    record: async (handle) => {
      if (handle.executor === 'ssh') for (const process of handle.processes) startedGroups.add(process.pgid)
      await record(handle)
    },
  }
}

/** Live, non-zombie processes in process group `pgid` (the SSH hosts are on this machine). */
function groupMembers(pgid: number): number[] {
  const members: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return members
}

const until = (what: string, condition: () => boolean, timeoutMs = 30_000) => waitFor(what, condition, timeoutMs, 50)

before(async () => {
  if (skip) return
  ;({ dir, env } = newLocalClusterDir())
  const started = await localCluster('start', dir, env)
  assert.equal(started.code, 0, `deploy/local-cluster/start failed:\n${started.stderr}`)
  port = Number(/^SSH_PORT=(\d+)$/m.exec(readFileSync(path.join(dir, 'ports'), 'utf8'))![1])
  work = path.join(dir, 'work', 'ssh')
  scratch = mkdtempSync(path.join(tmpdir(), 'cairn-ssh-executor-'))
})

after(async () => {
  for (const created of executors) await created.close()
  for (const pgid of startedGroups) {
    if (groupMembers(pgid).length === 0) continue
    try {
      process.kill(-pgid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
  if (skip) return
  await localCluster('stop', dir, env)
  rmSync(scratch, { recursive: true, force: true })
  rmSync(dir, { recursive: true, force: true })
})

test('a 2-host job runs one rank per host with the rank environment, after the handle is recorded, and fetches artifacts', { skip }, async () => {
  const lines: RankLine[] = []
  const job = spec(['sh', '-c', 'echo "rank=$RANK node=$NODE_RANK local=$LOCAL_RANK world=$WORLD_SIZE lws=$LOCAL_WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT extra=$EXTRA cwd=$(pwd)"; echo "to stderr $RANK" >&2; touch started-$RANK; mkdir -p out/sub; if [ "$RANK" = 0 ]; then echo "model of rank $RANK" > model.txt; echo deep > out/sub/x.txt; fi'], {
    env: { EXTRA: 'a b $c' },
    masterPort: 29_555,
    artifacts: ['model.txt', 'out'],
  })
  let recordedHandle: unknown
  const running = await executor().start(job, options(lines, {
    record: async (handle) => {
      recordedHandle = handle
      // The program must not have started yet: hold record back and look for its marker files.
      await sleep(300)
      assert.equal(existsSync(path.join(job.workdir, 'started-0')) || existsSync(path.join(job.workdir, 'started-1')), false, 'a rank ran before record() resolved')
    },
  }))
  const outcome = await running.done
  assert.deepEqual(outcome, { ok: true, artifacts: ['model.txt', 'out/sub/x.txt'] })
  assert.deepEqual(recordedHandle, running.handle)
  assert.equal(running.handle.executor, 'ssh')
  if (running.handle.executor === 'ssh') {
    assert.deepEqual(running.handle.processes.map((process) => process.host), [`127.0.0.2:${port}`, `127.0.0.3:${port}`])
    for (const process of running.handle.processes) assert.ok(process.pgid > 1)
  }
  const stdout = lines.filter((line) => line.stream === 'stdout')
  assert.deepEqual(
    stdout.map((line) => [line.rank, line.host, line.line]).sort(),
    [
      [0, '127.0.0.2', `rank=0 node=0 local=0 world=2 lws=1 master=127.0.0.2:29555 extra=a b $c cwd=${job.workdir}`],
      [1, '127.0.0.3', `rank=1 node=1 local=0 world=2 lws=1 master=127.0.0.2:29555 extra=a b $c cwd=${job.workdir}`],
    ],
  )
  assert.deepEqual(lines.filter((line) => line.stream === 'stderr').map((line) => [line.rank, line.host, line.line]).sort(), [[0, '127.0.0.2', 'to stderr 0'], [1, '127.0.0.3', 'to stderr 1']])
  assert.equal(readFileSync(path.join(job.artifactsDir, 'model.txt'), 'utf8'), 'model of rank 0\n')
  assert.equal(readFileSync(path.join(job.artifactsDir, 'out/sub/x.txt'), 'utf8'), 'deep\n')
})

test('a line longer than 64 KiB without a newline arrives in pieces, nothing lost', { skip }, async () => {
  const lines: RankLine[] = []
  const outcome = await (await executor().start(spec(['sh', '-c', 'head -c 150000 /dev/zero | tr "\\0" x'], { nodes: 1 }), options(lines))).done
  assert.equal(outcome.ok, true)
  assert.deepEqual(lines.map((line) => line.line.length), [65_536, 65_536, 150_000 - 2 * 65_536])
  assert.ok(lines.every((line) => /^x*$/.test(line.line)))
})

test('two ranks per host get LOCAL_RANK 0 and 1 and consecutive RANKs', { skip }, async () => {
  const lines: RankLine[] = []
  const outcome = await (await executor().start(spec(['sh', '-c', 'echo "$RANK $NODE_RANK $LOCAL_RANK $WORLD_SIZE"'], { tasksPerNode: 2 }), options(lines))).done
  assert.equal(outcome.ok, true)
  assert.deepEqual(lines.map((line) => `${line.host} ${line.line}`).sort(), ['127.0.0.2 0 0 0 4', '127.0.0.2 1 0 1 4', '127.0.0.3 2 1 0 4', '127.0.0.3 3 1 1 4'])
})

test('hostile argv words reach the program byte for byte', { skip }, async () => {
  const hostile = ['a;b', '$(touch pwned-subst)', '`touch pwned-tick`', "it's", '"double"', 'two words', 'line1\nline2', '*', '', '-n', '--', 'a\\b', "'; touch pwned-quote; '", '${HOME}', '\t tab', 'ünï €']
  const job = spec(['sh', '-c', 'for a in "$@"; do printf "%s\\0" "$a"; done > args.bin', 'prog', ...hostile], { nodes: 1, artifacts: ['args.bin'] })
  const outcome = await (await executor().start(job, options())).done
  assert.equal(outcome.ok, true, JSON.stringify(outcome))
  const received = readFileSync(path.join(job.artifactsDir, 'args.bin'))
  assert.deepEqual(received, Buffer.from(hostile.map((word) => `${word}\0`).join(''), 'utf8'))
  for (const marker of ['pwned-subst', 'pwned-tick', 'pwned-quote']) assert.equal(existsSync(path.join(job.workdir, marker)), false, marker)
  // The workdir and environment values are words too.
  const odd = spec(['sh', '-c', 'printf "%s" "$ODD" > "$(pwd)/env.txt"'], { nodes: 1, env: { ODD: "$(touch pwned-env); `x` 'q' \"d\" \n*" }, artifacts: ['env.txt'] })
  odd.workdir = path.join(work, `odd dir; $(touch pwned-wd) 'q'`)
  assert.equal((await (await executor().start(odd, options())).done).ok, true)
  assert.equal(readFileSync(path.join(odd.artifactsDir, 'env.txt'), 'utf8'), "$(touch pwned-env); `x` 'q' \"d\" \n*")
  assert.equal(existsSync(path.join(odd.workdir, 'pwned-env')), false)
  assert.equal(readdirSync(work).some((name) => name === 'pwned-wd'), false)
})

async function fingerprint(pubFile: string): Promise<string> {
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile])
  return stdout.split(' ')[1]!
}

test('an unknown host key is refused with the host and fingerprint, and nothing runs on any host', { skip }, async () => {
  const knownHosts = path.join(scratch, 'known_hosts_unknown')
  // Only the first host is known: the second host's key is unknown.
  writeFileSync(knownHosts, readFileSync(path.join(dir, 'ssh/known_hosts'), 'utf8').split('\n').filter((line) => !line.startsWith('[127.0.0.3]')).join('\n'))
  const job = spec(['touch', 'ran'])
  let recorded = false
  const running = await executor(cluster(knownHosts, true)).start(job, options([], { record: async () => void (recorded = true) }))
  const outcome = await running.done
  assert.equal(outcome.ok, false)
  if (outcome.ok) return
  assert.equal(outcome.kind, 'infrastructure')
  assert.equal(outcome.retryable, false)
  assert.match(outcome.message, new RegExp(`host key of \\[127\\.0\\.0\\.3\\]:${port} is unknown`))
  assert.ok(outcome.message.includes(await fingerprint(path.join(dir, 'ssh/127.0.0.3/ssh_host_ed25519_key.pub'))), outcome.message)
  assert.match(outcome.message, /nothing was started on any host/)
  assert.equal(recorded, false)
  await sleep(300)
  assert.equal(existsSync(path.join(job.workdir, 'ran')), false, 'a rank ran although a host key was refused')
})

test('a changed host key is refused with the host and both fingerprints, and nothing runs on any host', { skip }, async () => {
  const other = path.join(scratch, 'other_key')
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
  const otherKey = readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')
  const knownHosts = path.join(scratch, 'known_hosts_changed')
  writeFileSync(knownHosts, readFileSync(path.join(dir, 'ssh/known_hosts'), 'utf8').split('\n').map((line) => (line.startsWith('[127.0.0.3]') ? `[127.0.0.3]:${port} ${otherKey}` : line)).join('\n'))
  const job = spec(['touch', 'ran'])
  const outcome = await (await executor(cluster(knownHosts))).start(job, options()).then((running) => running.done)
  assert.equal(outcome.ok, false)
  if (outcome.ok) return
  assert.match(outcome.message, new RegExp(`host key of \\[127\\.0\\.0\\.3\\]:${port} has CHANGED`))
  assert.ok(outcome.message.includes(await fingerprint(path.join(dir, 'ssh/127.0.0.3/ssh_host_ed25519_key.pub'))), outcome.message)
  assert.ok(outcome.message.includes(await fingerprint(`${other}.pub`)), outcome.message)
  await sleep(300)
  assert.equal(existsSync(path.join(job.workdir, 'ran')), false)
})

test('a hashed known_hosts file (ssh-keygen -H) is accepted', { skip }, async () => {
  const knownHosts = path.join(scratch, 'known_hosts_hashed')
  copyFileSync(path.join(dir, 'ssh/known_hosts'), knownHosts)
  await run('ssh-keygen', ['-H', '-f', knownHosts])
  assert.match(readFileSync(knownHosts, 'utf8'), /^\|1\|/)
  const lines: RankLine[] = []
  const outcome = await (await executor(cluster(knownHosts)).start(spec(['echo', 'hashed ok']), options(lines))).done
  assert.equal(outcome.ok, true, JSON.stringify(outcome))
  assert.equal(lines.length, 2)
})

/** Starts a job whose ranks each run a process tree (children and a TERM-ignoring grandchild) and wait for it. */
async function startLongJob(exec: SshExecutor, lines: RankLine[], controller = new AbortController()): Promise<{ running: RunningJob; pgids: number[] }> {
  const job = spec(['sh', '-c', "sleep 600 & sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo ready; wait"])
  const running = await exec.start(job, options(lines, { signal: controller.signal }))
  await until('both ranks ready', () => lines.filter((line) => line.line === 'ready').length === 2)
  assert.equal(running.handle.executor, 'ssh')
  const pgids = running.handle.executor === 'ssh' ? running.handle.processes.map((process) => process.pgid) : []
  for (const pgid of pgids) assert.ok(groupMembers(pgid).length >= 3, `group ${pgid} runs the rank's processes`)
  return { running, pgids }
}

test('cancel stops every process of every rank on every host, confirmed', { skip }, async () => {
  const lines: RankLine[] = []
  const { running, pgids } = await startLongJob(executor(), lines)
  await running.cancel('cancelled')
  // cancel() resolves once the groups are confirmed gone: nothing may be left at that moment.
  for (const pgid of pgids) assert.deepEqual(groupMembers(pgid), [], `group ${pgid} still has processes`)
  const outcome = await running.done
  assert.equal(outcome.ok, false)
  if (!outcome.ok) assert.equal(outcome.kind, 'cancelled')
  await running.cancel('cancelled') // idempotent
})

test('the abort signal cancels like cancel()', { skip }, async () => {
  const controller = new AbortController()
  const { running, pgids } = await startLongJob(executor(), [], controller)
  controller.abort()
  const outcome = await running.done
  assert.equal(outcome.ok ? 'ok' : outcome.kind, 'cancelled')
  for (const pgid of pgids) assert.deepEqual(groupMembers(pgid), [])
})

test('a timeout stops every process on every host and is reported as a timeout', { skip }, async () => {
  const { running, pgids } = await startLongJob(executor(), [])
  await running.cancel('timeout')
  for (const pgid of pgids) assert.deepEqual(groupMembers(pgid), [])
  const outcome = await running.done
  assert.equal(outcome.ok ? 'ok' : outcome.kind, 'timeout')
})

test('a rank that exits non-zero fails the job with its exit code and stops the other ranks', { skip }, async () => {
  const job = spec(['sh', '-c', 'if [ "$RANK" = 1 ]; then sleep 0.5; exit 7; fi; echo waiting; sleep 600'])
  const lines: RankLine[] = []
  const running = await executor().start(job, options(lines))
  const outcome = await running.done
  assert.equal(outcome.ok, false)
  if (outcome.ok) return
  assert.equal(outcome.kind, 'exit_code')
  assert.equal(outcome.exitCode, 7)
  assert.match(outcome.message, /rank 1 on 127\.0\.0\.3 exited with code 7/)
  if (running.handle.executor === 'ssh') for (const process of running.handle.processes) assert.deepEqual(groupMembers(process.pgid), [])
})

test('a dropped connection fails the job as infrastructure and the hang-up watchdog leaves no process', { skip }, async () => {
  const exec = executor()
  const { running, pgids } = await startLongJob(exec, [])
  // Cut the TCP connection to the second host by killing the sshd processes that serve it.
  const { stdout } = await run('ss', ['-Htnp', 'state', 'established', 'src', '127.0.0.3', 'sport', `= :${port}`])
  const sshdPids = [...new Set([...stdout.matchAll(/pid=(\d+)/g)].map((match) => Number(match[1])))]
  assert.ok(sshdPids.length > 0, `no sshd connection found on 127.0.0.3:${port}: ${stdout}`)
  for (const pid of sshdPids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // ended with its parent
    }
  }
  const outcome = await running.done
  assert.equal(outcome.ok ? 'ok' : outcome.kind, 'infrastructure')
  if (!outcome.ok) assert.equal(outcome.retryable, true)
  if (!outcome.ok) assert.match(outcome.message, /connection to 127\.0\.0\.3:\d+ was lost/)
  // The dropped host's rank is stopped by its watchdog (TERM, KILL 5 s later); the other host's by the executor.
  await until('every rank group to be gone', () => pgids.every((pgid) => groupMembers(pgid).length === 0), 30_000)
})

test('re-attach follows recorded pgids until they end, can cancel them, and reports them gone', { skip }, async () => {
  const first = executor()
  const { running, pgids } = await startLongJob(first, [])
  const lines: RankLine[] = []
  const second = executor()
  const followed = await second.reattach(running.handle, { onLine: (line) => void lines.push(line), signal: new AbortController().signal })
  assert.match(lines[0]?.line ?? '', /re-attached to 2 running rank\(s\)/)
  await followed.cancel('cancelled')
  for (const pgid of pgids) assert.deepEqual(groupMembers(pgid), [])
  assert.equal((await followed.done).ok ? 'ok' : 'failed', 'failed')
  const outcome = await followed.done
  if (!outcome.ok) assert.equal(outcome.kind, 'cancelled')
  await running.done
  const again = await executor().reattach(running.handle, { onLine: () => {}, signal: new AbortController().signal })
  const gone = await again.done
  assert.equal(gone.ok, false)
  if (!gone.ok) assert.match(gone.message, /are gone/)
})

test('re-attach streams each rank\'s output from its start into the log, with its rank, until the ranks end', { skip }, async () => {
  // Each rank prints a numbered line, waits until the second executor follows it, then prints more and ends.
  const job = spec(['sh', '-c', 'echo "r$RANK-1 it\'s $RANK"; while [ ! -f go-on ]; do sleep 0.1; done; for i in 2 3 4; do echo "r$RANK-$i"; sleep 0.2; done'])
  const firstLines: RankLine[] = []
  const running = await executor().start(job, options(firstLines))
  await until('both ranks to print their first line', () => firstLines.filter((line) => /^r[01]-1/.test(line.line)).length === 2)
  const lines: RankLine[] = []
  const followed = await executor().reattach(running.handle, { onLine: (line) => void lines.push(line), signal: new AbortController().signal })
  await until('the first lines to be replayed', () => lines.filter((line) => /^r[01]-1/.test(line.line)).length === 2)
  // The workdir is each rank's host's (both hosts are this machine): one go-on file lets both go on.
  writeFileSync(path.join(job.workdir, 'go-on'), '')
  const outcome = await followed.done
  assert.equal(outcome.ok, true, JSON.stringify(outcome))
  assert.equal((await running.done).ok, true)
  assert.match(lines[0]!.line, /re-attached to 2 running rank\(s\).*output follows from its start/)
  for (const rank of [0, 1]) {
    const mine = lines.filter((line) => line.rank === rank)
    assert.deepEqual(mine.map((line) => line.line), [`r${rank}-1 it's ${rank}`, `r${rank}-2`, `r${rank}-3`, `r${rank}-4`], `rank ${rank}: every line once, in order, as the first executor saw them`)
    assert.equal(mine[0]!.host, rank === 0 ? '127.0.0.2' : '127.0.0.3')
  }
  assert.deepEqual(firstLines.filter((line) => line.rank >= 0).map((line) => line.line).sort(), lines.filter((line) => line.rank >= 0).map((line) => line.line).sort())
})

test('a worker killed mid-job leaves no rank behind: the hang-up watchdog stops each group', { skip }, async () => {
  // A separate worker process starts the job, prints the pgids and is then SIGKILLed: nothing is left to send
  // TERM, so only the wrappers' watchdogs (stdin closed with the connection) can stop the ranks.
  const worker = path.join(scratch, 'worker.ts')
  writeFileSync(
    worker,
    `import { createSshExecutor } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../engine/executors/ssh.ts'))}
const setting = JSON.parse(process.argv[2])
const job = JSON.parse(process.argv[3])
const running = await createSshExecutor(setting).start(job, { onLine: (line) => { if (line.line === 'ready') console.log('ready') }, record: async (handle) => console.log(JSON.stringify(handle)), signal: new AbortController().signal })
await running.done
`,
  )
  const { spawn } = await import('node:child_process')
  const job = spec(['sh', '-c', "sleep 600 & sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo ready; wait"])
  const child = spawn(process.execPath, [worker, JSON.stringify(cluster()), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  await until('the worker to start both ranks', () => out.split('\n').filter((line) => line === 'ready').length === 2)
  const handle = JSON.parse(out.split('\n')[0]!) as { processes: { pgid: number }[] }
  const pgids = handle.processes.map((process) => process.pgid)
  for (const pgid of pgids) startedGroups.add(pgid)
  for (const pgid of pgids) assert.ok(groupMembers(pgid).length >= 3)
  child.kill('SIGKILL')
  await until('every rank group to be gone after the worker died', () => pgids.every((pgid) => groupMembers(pgid).length === 0), 30_000)
})

test('re-attach after the ranks ended reports each rank\'s exit status: success (with artifacts) and failure', { skip }, async () => {
  const good = spec(['sh', '-c', 'if [ "$RANK" = 0 ]; then echo model > model.txt; fi; exit 0'], { artifacts: ['model.txt'] })
  const finished = await executor().start(good, options())
  assert.equal((await finished.done).ok, true)
  const handle = finished.handle
  assert.ok(handle.executor === 'ssh' && handle.processes.every((process) => typeof process.status === 'string'), JSON.stringify(handle))
  const later = { ...good, artifactsDir: path.join(scratch, 'reattached-artifacts') }
  const lines: RankLine[] = []
  const followed = await executor().reattach(handle, { onLine: (line) => void lines.push(line), signal: new AbortController().signal, spec: later })
  assert.deepEqual(await followed.done, { ok: true, artifacts: ['model.txt'] })
  assert.equal(readFileSync(path.join(later.artifactsDir, 'model.txt'), 'utf8'), 'model\n')
  assert.match(lines[0]?.line ?? '', /every recorded rank has ended/)

  const bad = await executor().start(spec(['sh', '-c', 'if [ "$RANK" = 1 ]; then exit 4; fi; exit 0']), options())
  assert.equal((await bad.done).ok, false)
  const failed = await (await executor().reattach(bad.handle, { onLine: () => {}, signal: new AbortController().signal })).done
  assert.equal(failed.ok ? 'ok' : failed.kind, 'exit_code')
  if (!failed.ok) {
    assert.equal(failed.exitCode, 4)
    assert.match(failed.message, /rank 1 on 127\.0\.0\.3:\d+ exited with code 4/)
  }
})

test('a worker shutting down with keepJobsOnShutdown detaches: the ranks run on without it, and the next worker re-attaches and gets their result', { skip }, async () => {
  const keeping = createSshExecutor(cluster(), { killGraceMs: 1_000, followIntervalMs: 200, keepJobsOnShutdown: true })
  const lines: RankLine[] = []
  const controller = new AbortController()
  const job = spec(['sh', '-c', 'echo started; while [ ! -f go-on ]; do sleep 0.1; done; echo "more output after the worker left"; echo "done $RANK" > "done-$RANK"; if [ "$RANK" = 0 ]; then echo model > model.txt; fi'], { artifacts: ['model.txt'] })
  const running = await keeping.start(job, options(lines, { signal: controller.signal }))
  await until('both ranks to start', () => lines.filter((line) => line.line === 'started').length === 2)
  const pgids = running.handle.executor === 'ssh' ? running.handle.processes.map((process) => process.pgid) : []
  controller.abort({ cause: 'shutdown', message: 'worker shutting down' })
  const outcome = await running.done
  assert.equal(outcome.ok ? 'ok' : outcome.kind, 'infrastructure')
  if (!outcome.ok) assert.match(outcome.message, /keep running/)
  // The worker's connections go away; the ranks' watchdogs stood down, so they run on.
  await keeping.close()
  await sleep(1_500)
  for (const pgid of pgids) assert.ok(groupMembers(pgid).length > 0, `group ${pgid} was stopped although the worker detached`)
  assert.equal(lines.some((line) => line.line === 'cairn-detached'), false, 'the watchdog\'s answer is not a line of the task')
  writeFileSync(path.join(job.workdir, 'go-on'), '')

  const next: RankLine[] = []
  const followed = await executor().reattach(running.handle, { onLine: (line) => void next.push(line), signal: new AbortController().signal, spec: job })
  const result = await followed.done
  assert.deepEqual(result, { ok: true, artifacts: ['model.txt'] })
  for (const rank of [0, 1]) assert.equal(readFileSync(path.join(job.workdir, `done-${rank}`), 'utf8'), `done ${rank}\n`)
  // Output written while no worker listened is kept beside the rank's status.
  const status = running.handle.executor === 'ssh' ? running.handle.processes[0]!.status! : ''
  assert.match(readFileSync(`${status}.out`, 'utf8'), /more output after the worker left/)
})

test('without master_port, rank 0\'s rendezvous port is one that nothing on the first host listens on', { skip }, async () => {
  const setting = cluster()
  const connected = await connectSsh(setting.hosts[0]!, setting.known_hosts_file)
  assert.ok(connected.ok, connected.ok ? '' : connected.message)
  const { connection } = connected
  // A daemon of the host holds a port of the rendezvous range (the local cluster's own slurmd took one in CI).
  const { server: taken, port: takenPort } = await listenInRange(HOSTS[0]!, 20_000, 30_000)
  try {
    assert.equal(await connection.listening(HOSTS[0]!, takenPort), true)
    const { server: closed, port: closedPort } = await listenInRange(HOSTS[0]!, 20_000, 30_000)
    await closeServer(closed)
    assert.equal(await connection.listening(HOSTS[0]!, closedPort), false)
    // The random draws: first the taken port, then the free one.
    const draws = [takenPort, closedPort].map((p) => (p - 20_000 + 0.5) / 30_000)
    assert.equal(await freeRendezvousPort(connection, HOSTS[0]!, () => draws.shift()!), closedPort)
  } finally {
    await closeServer(taken)
    connection.close()
  }
})
