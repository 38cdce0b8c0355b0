/**
 * The file-system steps around an attempt's folder, against the real file system and, as root, the
 * real task user: every step ends on cancel or after its time limit even when the kernel call under
 * it blocks, nothing follows a link the task could plant, and the folder belongs to the task user.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { constants } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { checkWorkdir, createWorkdir, fsStep, prepareAttemptDir, prepareWorkRoot, readTaskFile } from '../../engine/process/attempt-dir.ts'
import { resolveTaskUser } from '../../engine/process/task-user.ts'
import type { TaskUser } from '../../engine/process/task-user.ts'
import { shell } from '../../operators/shell.ts'
import type { OperatorContext } from '../../operators/define.ts'
import { taskAbort } from '../../operators/define.ts'
import { waitFor } from '../helpers/engine-extra.ts'

const scratch = mkdtempSync(path.join(tmpdir(), 'cairn-attempt-dir-'))
after(() => rmSync(scratch, { recursive: true, force: true }))
const log = pino({ level: 'silent' })
const isRoot = process.getuid?.() === 0
if (!isRoot && process.env.CI === 'true') throw new Error('these tests need root (CI runs as root)')
const user: TaskUser | undefined = isRoot ? await resolveTaskUser(undefined, log) : undefined

test('checkWorkdir: relative folders inside the attempt only', () => {
  const ok = (w: string) => {
    const r = checkWorkdir(w)
    return r.ok ? r.relative : r.message
  }
  assert.equal(ok('out'), 'out')
  assert.equal(ok('out/2026-01-01/'), 'out/2026-01-01')
  assert.equal(ok('./a/../b'), 'b')
  assert.equal(ok('.'), '.')
  assert.match(ok('/proc/self'), /workdir "\/proc\/self" is an absolute path/)
  assert.match(ok('/'), /absolute path/)
  assert.match(ok('../../x'), /leaves the attempt's folder through "\.\."/)
  assert.match(ok('a/../..'), /leaves the attempt's folder/)
  assert.match(ok('a\0b'), /NUL byte/)
  assert.match(ok(Array.from({ length: 40 }, () => 'd').join('/')), /nests 40 folders deep; at most 32/)
})

test('fsStep: a file-system call blocked in the kernel (opening a FIFO) ends the attempt on cancel and at its time limit', async () => {
  const fifo = path.join(scratch, 'blocked.fifo')
  execFileSync('mkfifo', [fifo])
  const blocked: Promise<unknown>[] = []
  const openBlocking = () => {
    const opening = open(fifo, 'r')
    blocked.push(opening)
    return opening
  }
  try {
    const controller = new AbortController()
    const started = Date.now()
    const step = fsStep('opening the FIFO', openBlocking, controller.signal)
    setTimeout(() => controller.abort(taskAbort('cancelled', 'cancelled by a user')), 100)
    assert.deepEqual(await step, { ok: false, aborted: true })
    assert.ok(Date.now() - started < 2_000, `ended ${Date.now() - started} ms after the start`)

    const timed = await fsStep('opening the FIFO', openBlocking, new AbortController().signal, 200)
    assert.deepEqual(timed, { ok: false, aborted: false, message: 'opening the FIFO did not finish within 200 ms' })
  } finally {
    // Release the blocked opens (a writer arrives) so no thread of the pool stays stuck.
    for (let i = 0; i < blocked.length; i++) {
      const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => undefined)
      await writer?.close()
    }
    for (const handle of await Promise.allSettled(blocked)) if (handle.status === 'fulfilled') await (handle.value as { close(): Promise<void> }).close()
  }
})

test('readTaskFile: never through a link, never blocking on a FIFO, bounded', async () => {
  const dir = mkdtempSync(path.join(scratch, 'read-'))
  const signal = new AbortController().signal
  writeFileSync(path.join(dir, 'secret.json'), '{"password": "root-only"}')
  symlinkSync(path.join(dir, 'secret.json'), path.join(dir, 'link.json'))
  execFileSync('mkfifo', [path.join(dir, 'pipe.json')])
  writeFileSync(path.join(dir, 'big.json'), 'x'.repeat(2000))
  writeFileSync(path.join(dir, 'ok.json'), '{"a": 1}')
  assert.deepEqual(await readTaskFile(path.join(dir, 'link.json'), 1000, signal, 'outputs'), { found: true, ok: false, message: 'outputs is a symbolic link; it must be a regular file' })
  assert.deepEqual(await readTaskFile(path.join(dir, 'pipe.json'), 1000, signal, 'outputs'), { found: true, ok: false, message: 'outputs is not a regular file' })
  assert.deepEqual(await readTaskFile(path.join(dir, 'big.json'), 1000, signal, 'outputs'), { found: true, ok: false, message: 'outputs is 2000 bytes; outputs are limited to 1000 bytes' })
  assert.deepEqual(await readTaskFile(path.join(dir, 'none.json'), 1000, signal, 'outputs'), { found: false })
  assert.deepEqual(await readTaskFile(path.join(dir, 'ok.json'), 1000, signal, 'outputs'), { found: true, ok: true, text: '{"a": 1}' })
})

test('prepareAttemptDir: a fresh folder for the task user under folders it can pass but not list; leftovers go without following links', { skip: !isRoot && 'needs root' }, async () => {
  const root = path.join(scratch, 'work')
  await prepareWorkRoot(root, user, log)
  const dir = path.join(root, 'run-1', 'task_a', '1')
  const signal = new AbortController().signal
  assert.deepEqual(await prepareAttemptDir(dir, user, signal), { ok: true, value: undefined })
  for (const folder of [root, path.dirname(dir), path.dirname(path.dirname(dir))]) assert.equal(statSync(folder).mode & 0o777, 0o711, folder)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(dir).uid, user!.uid)

  // What a task left behind, including a link to a file only root may touch: the link goes, the file stays.
  const precious = path.join(scratch, 'precious')
  mkdirSync(precious)
  writeFileSync(path.join(precious, 'keep'), 'keep me')
  chmodSync(precious, 0o700)
  execFileSync('setpriv', ['--reuid', String(user!.uid), '--regid', String(user!.gid), '--clear-groups', 'sh', '-c', `mkdir -p deep/er && touch deep/er/f && ln -s ${precious} deep/link`], { cwd: dir })
  assert.deepEqual(await prepareAttemptDir(dir, user, signal), { ok: true, value: undefined })
  assert.deepEqual(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }), '')
  assert.equal(readFileSync(path.join(precious, 'keep'), 'utf8'), 'keep me')
  const parent = path.dirname(dir)
  await waitFor('the leftovers beside the attempt folder to be removed', () => execFileSync('ls', ['-A', parent], { encoding: 'utf8' }).trim() === '1', 10_000)
  assert.equal(readFileSync(path.join(precious, 'keep'), 'utf8'), 'keep me')

  const cancelled = new AbortController()
  cancelled.abort()
  assert.deepEqual(await prepareAttemptDir(path.join(root, 'run-1', 'task_a', '2'), user, cancelled.signal), { ok: false, aborted: true })
  assert.equal(existsSync(path.join(root, 'run-1', 'task_a', '2')), false)
})

test('createWorkdir: made by the task user inside the attempt folder; cancelled before it starts, nothing is made', { skip: !isRoot && 'needs root' }, async () => {
  const root = path.join(scratch, 'work2')
  await prepareWorkRoot(root, user, log)
  const dir = path.join(root, 'r', 't', '1')
  await prepareAttemptDir(dir, user, new AbortController().signal)
  const made = await createWorkdir(dir, 'out/a', user, new AbortController().signal)
  assert.deepEqual(made, { ok: true, value: path.join(dir, 'out/a') })
  assert.equal(statSync(path.join(dir, 'out/a')).uid, user!.uid)
  const cancelled = new AbortController()
  cancelled.abort()
  assert.deepEqual(await createWorkdir(dir, 'never', user, cancelled.signal), { ok: false, aborted: true })
  assert.equal(existsSync(path.join(dir, 'never')), false)
})

test('shell as the task user: its uid, HOME in its own folder, outputs read back', { skip: !isRoot && 'needs root' }, async () => {
  const root = path.join(scratch, 'work3')
  await prepareWorkRoot(root, user, log)
  const workdir = path.join(root, 'r', 't', '1')
  await prepareAttemptDir(workdir, user, new AbortController().signal)
  const lines: string[] = []
  const ctx: OperatorContext = {
    dagId: 'd', runId: 'r', taskId: 't', attempt: 1,
    interval: { start: new Date(0), end: new Date(0), logicalDate: new Date(0) },
    signal: new AbortController().signal,
    env: {},
    workerEnv: { PATH: process.env.PATH, HOME: '/root', USER: 'root' },
    workdir,
    user: user!,
    killGraceMs: 1_000,
    log: { info: () => {}, warn: () => {}, error: () => {} },
    output: (_stream, line) => lines.push(line),
  }
  const result = await shell.run({ script: 'printf \'{"uid": %s, "groups": "%s", "home": "%s", "user": "%s"}\' "$(id -u)" "$(id -G)" "$HOME" "$USER" > "$CAIRN_OUTPUTS"', workdir: 'sub' }, ctx)
  assert.deepEqual(result, { ok: true, outputs: { uid: user!.uid, groups: String(user!.gid), home: workdir, user: user!.name, exit_code: 0 } })
})
