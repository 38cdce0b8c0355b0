import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { createLocalExecutor } from '../../engine/executors/local.ts'
import type { JobHandle, JobSpec, RankLine } from '../../engine/executors/executor.ts'
import { waitFor } from '../helpers/engine-extra.ts'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const until = (check: () => boolean, what: string, ms = 30_000) => waitFor(what, check, ms, 50)

function spec(dir: string, argv: string[], extra: Partial<JobSpec> = {}): JobSpec {
  return { argv, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', EXTRA: 'x' }, nodes: 1, tasksPerNode: 2, gpusPerNode: 0, workdir: path.join(dir, 'work'), artifacts: [], artifactsDir: path.join(dir, 'artifacts'), ...extra }
}

test('a 2-rank local job: every rank gets its rank environment, lines carry the rank, rank 0 artifacts are collected', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-exec-'))
  try {
    const lines: RankLine[] = []
    const recorded: JobHandle[] = []
    const script = 'echo "env $RANK $WORLD_SIZE $NODE_RANK $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT $EXTRA"; if [ "$RANK" = 0 ]; then echo trained > model.onnx; fi'
    const job = await createLocalExecutor().start(spec(dir, ['/bin/sh', '-c', script], { artifacts: ['model.onnx'] }), {
      onLine: (l) => lines.push(l),
      record: async (h) => void recorded.push(h),
      signal: new AbortController().signal,
    })
    const outcome = await job.done
    assert.deepEqual(outcome, { ok: true, artifacts: [path.join(dir, 'artifacts', 'model.onnx')] })
    assert.equal(recorded.length, 1)
    assert.equal(recorded[0]!.executor, 'local')
    assert.equal((recorded[0] as { pids: number[] }).pids.length, 2)
    const byRank = new Map(lines.map((l) => [l.rank, l.line]))
    const port = byRank.get(0)!.split(' ')[7]!
    assert.ok(Number(port) > 0)
    assert.equal(byRank.get(0), `env 0 2 0 0 2 127.0.0.1 ${port} x`)
    assert.equal(byRank.get(1), `env 1 2 0 1 2 127.0.0.1 ${port} x`)
    assert.equal(await readFile(path.join(dir, 'artifacts', 'model.onnx'), 'utf8'), 'trained\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('2 nodes x 2 tasks: NODE_RANK and LOCAL_RANK follow the rank', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-exec-'))
  try {
    const lines: RankLine[] = []
    const job = await createLocalExecutor().start(spec(dir, ['/bin/sh', '-c', 'echo "$RANK $NODE_RANK $LOCAL_RANK $WORLD_SIZE"'], { nodes: 2 }), {
      onLine: (l) => lines.push(l),
      record: async () => {},
      signal: new AbortController().signal,
    })
    assert.equal((await job.done).ok, true)
    assert.deepEqual(lines.map((l) => l.line).sort(), ['0 0 0 4', '1 0 1 4', '2 1 0 4', '3 1 1 4'])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('cancel and a failing rank stop every rank (no orphan process)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-exec-'))
  try {
    // Each rank starts a background sleeper in its group and reports both pids.
    const script = 'sleep 300 & echo "pids $$ $!"; wait'
    const lines: RankLine[] = []
    const controller = new AbortController()
    const job = await createLocalExecutor({ killGraceMs: 500 }).start(spec(dir, ['/bin/sh', '-c', script]), { onLine: (l) => lines.push(l), record: async () => {}, signal: controller.signal })
    await until(() => lines.length === 2, 'both ranks to start')
    const pids = lines.flatMap((l) => l.line.split(' ').slice(1).map(Number))
    assert.equal(pids.length, 4)
    assert.ok(pids.every(alive))
    await job.cancel('timeout')
    const outcome = await job.done
    assert.equal(outcome.ok, false)
    assert.equal(!outcome.ok && outcome.kind, 'timeout')
    await until(() => !pids.some(alive), 'every rank process to be gone', 5_000)

    // Rank 1 fails: rank 0 (which would sleep for 300 s) is stopped too.
    const lines2: RankLine[] = []
    const failing = await createLocalExecutor({ killGraceMs: 500 }).start(spec(dir, ['/bin/sh', '-c', 'echo "pid $$"; if [ "$RANK" = 1 ]; then sleep 0.5; exit 3; fi; sleep 300']), { onLine: (l) => lines2.push(l), record: async () => {}, signal: new AbortController().signal })
    const started = Date.now()
    const failed = await failing.done
    assert.ok(Date.now() - started < 20_000)
    assert.equal(!failed.ok && failed.kind, 'exit_code')
    assert.match(!failed.ok ? failed.message : '', /rank 1 exited with code 3/)
    const pids2 = lines2.map((l) => Number(l.line.split(' ')[1]))
    await until(() => !pids2.some(alive), 'rank 0 to be stopped', 5_000)

    // The operator's signal stops the job as well.
    const c3 = new AbortController()
    const lines3: RankLine[] = []
    const aborted = await createLocalExecutor({ killGraceMs: 500 }).start(spec(dir, ['/bin/sh', '-c', script]), { onLine: (l) => lines3.push(l), record: async () => {}, signal: c3.signal })
    await until(() => lines3.length === 2, 'both ranks to start')
    c3.abort()
    const out3 = await aborted.done
    assert.equal(!out3.ok && out3.kind, 'cancelled')
    const pids3 = lines3.flatMap((l) => l.line.split(' ').slice(1).map(Number))
    await until(() => !pids3.some(alive), 'every rank process to be gone', 5_000)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an absolute workdir is made as the task user: never inside a folder the task user could not write', async () => {
  const { resolveTaskUser } = await import('../../engine/process/task-user.ts')
  const { testLogger } = await import('../helpers/postgres.ts')
  const { chmodSync, existsSync, mkdirSync, statSync } = await import('node:fs')
  const user = process.getuid?.() === 0 ? await resolveTaskUser(undefined, testLogger()) : undefined
  if (!user) {
    if (process.env.CI === 'true') assert.fail('this test needs root (it runs ranks as the task user)')
    return
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-exec-'))
  try {
    chmodSync(dir, 0o711)
    const privateDir = path.join(dir, 'private')
    mkdirSync(privateDir, { mode: 0o700 })
    const open = path.join(dir, 'open')
    mkdirSync(open)
    chmodSync(open, 0o1777)
    const run = (workdir: string) => createLocalExecutor({ user }).start(spec(dir, ['/bin/sh', '-c', 'id -u > uid'], { tasksPerNode: 1, workdir }), { onLine: () => {}, record: async () => {}, signal: new AbortController().signal })
    const refused = await (await run(path.join(privateDir, 'scratch', 'x'))).done
    assert.equal(!refused.ok && refused.kind, 'infrastructure')
    assert.match(!refused.ok ? refused.message : '', /cannot create the workdir/)
    assert.equal(existsSync(path.join(privateDir, 'scratch')), false)
    const made = await (await run(path.join(open, 'scratch', 'x'))).done
    assert.equal(made.ok, true)
    assert.equal(statSync(path.join(open, 'scratch', 'x')).uid, user.uid)
    assert.equal(Number((await readFile(path.join(open, 'scratch', 'x', 'uid'), 'utf8')).trim()), user.uid)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('artifacts: a link out of the workdir is not followed, a missing artifact fails the job', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-local-exec-'))
  try {
    const secret = path.join(dir, 'secret.txt')
    await (await import('node:fs/promises')).writeFile(secret, 'do not copy')
    const run = (script: string, artifacts: string[]) => createLocalExecutor().start(spec(dir, ['/bin/sh', '-c', script], { tasksPerNode: 1, artifacts }), { onLine: () => {}, record: async () => {}, signal: new AbortController().signal })
    const linked = await (await run(`ln -sf ${JSON.stringify(secret)} model.onnx`, ['model.onnx'])).done
    assert.equal(linked.ok, false)
    assert.match(!linked.ok ? linked.message : '', /outside the workdir/)
    const { existsSync } = await import('node:fs')
    assert.equal(existsSync(path.join(dir, 'artifacts', 'model.onnx')), false)
    const missing = await (await run('true', ['metrics.json'])).done
    assert.equal(!missing.ok && missing.kind, 'exit_code')
    assert.match(!missing.ok ? missing.message : '', /did not write it/)
    const escaping = await (await run('true', ['../secret.txt'])).done
    assert.equal(escaping.ok, false)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
