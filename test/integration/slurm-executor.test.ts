/**
 * The slurm executor on the real local cluster (deploy/local-cluster: slurmctld, slurmd n1 and n2).
 * Every job is checked through Slurm itself (scontrol), not only through what the executor says.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { JobHandle, JobSpec } from '../../engine/executors/executor.ts'
import { createSlurmExecutor } from '../../engine/executors/slurm.ts'
import { localClusterSkipReason, slurmCommands, startLocalClusterFor } from '../helpers/local-cluster.ts'
import { collectJobEvents, pollUntil } from '../helpers/job-events.ts'

const skip = localClusterSkipReason()
const SLURM_MODULE = path.resolve(import.meta.dirname, '../../engine/executors/slurm.ts')

test('slurm executor on the local cluster', { skip }, async (t) => {
  const { dir, slurmConf } = await startLocalClusterFor(t)
  const env = { ...process.env, SLURM_CONF: slurmConf }
  const { slurm, jobState } = slurmCommands(slurmConf)
  const executor = createSlurmExecutor({ kind: 'slurm', submit: { via: 'local' }, partition: 'debug' }, { name: 'local_slurm', env })
  const work = mkdtempSync(path.join(dir, 'work', 'exec-'))

  const spec = (name: string, argv: string[], extra: Partial<JobSpec> = {}): JobSpec => ({
    argv, env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0, workdir: path.join(work, name), artifacts: [], artifactsDir: path.join(work, `${name}-artifacts`), ...extra,
  })
  const collect = () => collectJobEvents(jobState)
  const waitFor = (what: string, check: () => boolean | Promise<boolean>, ms = 60_000) => pollUntil(what, check, ms)

  await t.test('a 2-node job runs a rank on each node with its torchrun environment; artifacts are collected', async () => {
    const seen = collect()
    const job = await executor.start(
      spec('two-node', ['sh', '-c', 'echo "node=$SLURMD_NODENAME rank=$RANK node_rank=$NODE_RANK local=$LOCAL_RANK world=$WORLD_SIZE lws=$LOCAL_WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT greeting=$GREETING"; echo "to stderr $RANK" >&2; if [ "$RANK" = 0 ]; then echo "model of $SLURMD_NODENAME" > model.txt; fi'], {
        env: { GREETING: "it's $(not run)" }, artifacts: ['model.txt'],
      }),
      seen.options(),
    )
    const outcome = await job.done
    assert.deepEqual(outcome.ok, true, JSON.stringify(outcome))
    assert.equal(seen.handles.length, 1)
    assert.equal(seen.states[0], 'PENDING', 'the job was held while its id was recorded')
    const handle = seen.handles[0] as JobHandle & { executor: 'slurm' }
    assert.deepEqual(job.handle, handle)
    // Its name was recorded before sbatch was sent, so a worker taking over could find it without the id.
    assert.deepEqual(seen.intents, [{ ...handle, jobId: '' }])
    assert.match(handle.jobName ?? '', /^cairn-[0-9a-f]{10}$/)
    assert.match(await slurm(['scontrol', 'show', 'job', '-o', handle.jobId]), new RegExp(`JobName=${handle.jobName} `))
    assert.equal(await jobState(handle.jobId), 'COMPLETED')
    const ranks = seen.lines.filter((l) => l.stream === 'stdout' && l.line.startsWith('node='))
    assert.equal(ranks.length, 2, JSON.stringify(seen.lines))
    const byRank = new Map(ranks.map((l) => [l.rank, Object.fromEntries(l.line.split(' ').map((w) => w.split('=')))]))
    const nodeAddr = /NodeAddr=(\S+)/.exec(await slurm(['scontrol', 'show', 'node', '-o', 'n1']))?.[1]
    for (const rank of [0, 1]) {
      const fields = byRank.get(rank)
      assert.ok(fields, `rank ${rank} printed`)
      assert.equal(fields.node, `n${rank + 1}`)
      assert.equal(fields.rank, String(rank))
      assert.equal(fields.node_rank, String(rank))
      assert.equal(fields.local, '0')
      assert.equal(fields.world, '2')
      assert.equal(fields.lws, '1')
      assert.match(fields.master, new RegExp(`^${nodeAddr}:\\d+$`))
      assert.equal(ranks.find((l) => l.rank === rank)?.host, `n${rank + 1}`)
    }
    assert.equal(byRank.get(0)?.master, byRank.get(1)?.master)
    assert.ok(ranks.every((l) => l.line.endsWith("greeting=it's $(not run)")))
    assert.deepEqual(seen.lines.filter((l) => l.stream === 'stderr').map((l) => `${l.rank}:${l.line}`).sort(), ['0:to stderr 0', '1:to stderr 1'])
    assert.ok(outcome.ok)
    assert.deepEqual(outcome.artifacts, [path.join(work, 'two-node-artifacts', 'model.txt')])
    assert.equal(readFileSync(outcome.artifacts[0] as string, 'utf8'), 'model of n1\n')
  })

  await t.test('hostile words are passed literally and hostile options are never submitted', async () => {
    const marker = path.join(work, `pwned-${process.pid}`)
    const words = [`$(touch ${marker})`, `; touch ${marker}`, `\`touch ${marker}\``, `a\ntouch ${marker}`, '--wrap=id']
    const seen = collect()
    const job = await executor.start(spec('hostile', ['sh', '-c', 'if [ "$RANK" = 0 ]; then for w in "$@"; do printf "%s\\0" "$w"; done > args.bin; fi', 'sh', ...words], { nodes: 1 }), seen.options())
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify(outcome))
    assert.deepEqual(readFileSync(path.join(work, 'hostile', 'args.bin'), 'utf8').split('\0').slice(0, -1), words)
    assert.equal(existsSync(marker), false)

    const before = executor.commands.calls.get('sbatch') ?? 0
    const jobsBefore = await slurm(['squeue', '-h', '-t', 'all', '-o', '%i'])
    for (const slurmOptions of [{ partition: 'debug --wrap=touch /tmp/x' }, { time: '1:00\n#SBATCH --wrap=id' }, { partition: '$(id)' }, { mem: '1G;id' }]) {
      const refused = await executor.start(spec('refused', ['true'], { slurm: slurmOptions }), collect().options())
      const outcome = await refused.done
      assert.equal(outcome.ok, false)
      assert.match(!outcome.ok ? outcome.message : '', /slurm: slurm\.(partition|time|mem) must be .*nothing was submitted/)
      assert.equal(refused.handle.executor === 'slurm' && refused.handle.jobId, '')
    }
    assert.equal(executor.commands.calls.get('sbatch') ?? 0, before, 'nothing was submitted')
    assert.equal(await slurm(['squeue', '-h', '-t', 'all', '-o', '%i']), jobsBefore)
  })

  await t.test('a handle that cannot be recorded: the held job is cancelled and never runs', async () => {
    const workdir = path.join(work, 'unrecorded')
    let jobId = ''
    const job = await executor.start(spec('unrecorded', ['sh', '-c', 'touch ran']), {
      onLine: () => undefined,
      record: async (handle) => {
        jobId = (handle as { jobId: string }).jobId
        // The name before sbatch is recorded; the job's id is not.
        if (jobId !== '') throw new Error('store unavailable')
      },
      signal: new AbortController().signal,
    })
    const outcome = await job.done
    assert.equal(!outcome.ok && outcome.kind, 'infrastructure')
    assert.match(!outcome.ok ? outcome.message : '', /could not be recorded \(store unavailable\)/)
    await waitFor('the job cancelled', async () => (await jobState(jobId)) === 'CANCELLED', 10_000)
    assert.equal(existsSync(path.join(workdir, 'ran')), false)
  })

  for (const reason of ['cancelled', 'timeout', 'shutdown'] as const) {
    await t.test(`${reason} -> scancel, the job is CANCELLED in Slurm within seconds`, async () => {
      const seen = collect()
      const controller = new AbortController()
      const job = await executor.start(spec(`stop-${reason}`, ['sh', '-c', 'echo started; sleep 300']), seen.options(controller.signal))
      await waitFor('both ranks running', () => seen.lines.filter((l) => l.line === 'started').length === 2)
      const jobId = (job.handle as { jobId: string }).jobId
      const begin = Date.now()
      // A cancel comes through the signal (the worker's abort reason), a timeout too.
      controller.abort({ cause: reason, message: `test ${reason}` })
      const outcome = await job.done
      const elapsed = Date.now() - begin
      assert.equal(outcome.ok, false)
      assert.equal(!outcome.ok && outcome.kind, reason === 'shutdown' ? 'infrastructure' : reason)
      assert.equal(await jobState(jobId), 'CANCELLED')
      assert.ok(elapsed < 10_000, `confirmed after ${elapsed} ms`)
      console.log(`# ${reason}: job ${jobId} CANCELLED and confirmed ${elapsed} ms after the abort`)
      await job.cancel('cancelled') // idempotent
    })
  }

  await t.test('with keepJobsOnShutdown a draining worker leaves the job running; re-attach then cancels it', async () => {
    const keeping = createSlurmExecutor({ kind: 'slurm', submit: { via: 'local' } }, { name: 'local_slurm', env, keepJobsOnShutdown: true })
    const seen = collect()
    const controller = new AbortController()
    const job = await keeping.start(spec('keep', ['sh', '-c', 'echo started; sleep 300'], { nodes: 1 }), seen.options(controller.signal))
    await waitFor('the rank running', () => seen.lines.some((l) => l.line === 'started'))
    controller.abort({ cause: 'shutdown', message: 'draining' })
    const outcome = await job.done
    assert.equal(!outcome.ok && outcome.kind, 'infrastructure')
    const jobId = (job.handle as { jobId: string }).jobId
    assert.equal(await jobState(jobId), 'RUNNING')
    const again = await executor.reattach(job.handle, { onLine: () => undefined, signal: new AbortController().signal })
    await again.cancel('cancelled')
    assert.equal(!(await again.done).ok && ((await again.done) as { kind: string }).kind, 'cancelled')
    assert.equal(await jobState(jobId), 'CANCELLED')
  })

  await t.test('a worker killed mid-job: another re-attaches by job id, the job completes, one job in total', async () => {
    const workdir = path.join(work, 'reattach')
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { createSlurmExecutor } from ${JSON.stringify(SLURM_MODULE)}
      const executor = createSlurmExecutor(undefined, { name: 'local_slurm' })
      await executor.start({ argv: ['sh', '-c', 'echo begin; sleep 4; echo end-$RANK; [ "$RANK" = 0 ] && echo ok > done.txt; true'], env: {}, nodes: 2, tasksPerNode: 1, gpusPerNode: 0,
        workdir: ${JSON.stringify(workdir)}, artifacts: [], artifactsDir: '/nonexistent' },
        { onLine: (l) => console.log(JSON.stringify(l)), record: async (h) => console.log('HANDLE ' + JSON.stringify(h)), signal: new AbortController().signal })
      setInterval(() => {}, 1000)
    `], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    const jobsBefore = new Set((await slurm(['squeue', '-h', '-t', 'all', '-o', '%i'])).split('\n').filter(Boolean))
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const exited = new Promise((resolve) => child.on('exit', resolve))
    await waitFor('the first worker to see the job running', () => out.includes('"line":"begin"'))
    child.kill('SIGKILL')
    await exited
    // The last handle recorded: the job's id (the first one is its name, recorded before sbatch).
    const handle = JSON.parse([...out.matchAll(/HANDLE (.*)/g)].at(-1)?.[1] ?? 'null') as JobHandle & { executor: 'slurm' }
    assert.equal(handle.executor, 'slurm')
    assert.equal(await jobState(handle.jobId), 'RUNNING', 'the job outlived its worker')

    const seen = collect()
    const job = await executor.reattach(handle, { onLine: seen.options().onLine, signal: new AbortController().signal, spec: spec('reattach', ['x'], { artifacts: ['done.txt'] }) })
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify(outcome))
    assert.deepEqual(seen.lines.filter((l) => l.line.startsWith('end-')).map((l) => l.line).sort(), ['end-0', 'end-1'])
    assert.equal(await jobState(handle.jobId), 'COMPLETED')
    const jobsAfter = (await slurm(['squeue', '-h', '-t', 'all', '-o', '%i'])).split('\n').filter((id) => id !== '' && !jobsBefore.has(id))
    assert.deepEqual(jobsAfter, [handle.jobId], 'exactly one job for the attempt')

    // A finished job re-attached later reports its outcome without running anything.
    const sbatchBefore = executor.commands.calls.get('sbatch') ?? 0
    const again = await executor.reattach(handle, { onLine: () => undefined, signal: new AbortController().signal })
    assert.equal((await again.done).ok, true)
    assert.equal(executor.commands.calls.get('sbatch') ?? 0, sbatchBefore)
  })

  await t.test('a requeued job is followed by its id: it runs again and both runs\' output is in the log once', async () => {
    const seen = collect()
    const job = await executor.start(
      spec('requeued', ['sh', '-c', 'run=${SLURM_RESTART_COUNT:-0}; echo "start $run"; sleep 3; echo "end $run"; echo "run $run" > out.txt'], { nodes: 1, artifacts: ['out.txt'] }),
      seen.options(),
    )
    const jobId = (job.handle as JobHandle & { executor: 'slurm' }).jobId
    await waitFor('the first run to start', () => seen.lines.some((l) => l.line === 'start 0'))
    await slurm(['scontrol', 'requeue', jobId])
    await waitFor('the job to be pending again', async () => (await jobState(jobId)) === 'PENDING')
    // Slurm holds a requeued job back for a while (reason BeginTime); an administrator may let it go at once.
    await slurm(['scontrol', 'update', `JobId=${jobId}`, 'StartTime=now'])
    const outcome = await job.done
    assert.equal(outcome.ok, true, JSON.stringify(outcome))
    assert.equal(readFileSync(path.join(work, 'requeued-artifacts', 'out.txt'), 'utf8'), 'run 1\n', 'the artifact of the second run')
    assert.equal(seen.handles.length, 1, 'one job id')
    assert.match(await slurm(['scontrol', 'show', 'job', '-o', jobId]), /JobState=COMPLETED .*Restarts=1 /)
    const lines = seen.lines.filter((l) => l.stream === 'stdout').map((l) => l.line)
    for (const line of ['start 0', 'start 1', 'end 1']) assert.equal(lines.filter((l) => l === line).length, 1, `"${line}" once in ${JSON.stringify(lines)}`)
    assert.ok(!lines.includes('end 0'), 'the first run was stopped by the requeue')
    assert.ok(lines.indexOf('start 0') < lines.indexOf('start 1'))
  })

  await t.test('a failing rank fails the job with its exit code', async () => {
    const job = await executor.start(spec('fail', ['sh', '-c', 'exit 3'], { nodes: 1 }), collect().options())
    const outcome = await job.done
    assert.equal(outcome.ok, false)
    assert.equal(!outcome.ok && outcome.kind, 'exit_code')
    assert.equal(!outcome.ok && outcome.exitCode, 3)
  })
})
