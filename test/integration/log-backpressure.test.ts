/**
 * runProcess honours its sink's back-pressure: while onLine's promise is pending, no more output is
 * read, so a program that prints without pause blocks on its own stdout; once the promise settles,
 * reading resumes and every line arrives.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runProcess } from '../../engine/process/run-process.ts'
import { waitFor } from '../helpers/engine-extra.ts'

test('a pending onLine promise stops the reading until it settles; no line is lost', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'cairn-backpressure-'))
  t.after(() => rmSync(cwd, { recursive: true, force: true }))
  const total = 200_000 // ~2.5 MB, far more than a pipe holds
  let received = 0
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let exited = false
  const done = runProcess({
    argv: ['/bin/sh', '-c', `seq 1 ${total}; echo done >&2`],
    env: { PATH: '/usr/bin:/bin' },
    cwd,
    onLine: (stream) => {
      if (stream !== 'stdout') return undefined
      received++
      return received === 1 ? gate : undefined
    },
  }).then((exit) => {
    exited = true
    return exit
  })
  await waitFor('the first line', () => received > 0)
  // Whatever one read of the pipe held is split; then nothing more is read while the gate is shut.
  const held = received
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(received, held, 'lines were read while the sink asked to wait')
  assert.ok(held < total / 10, `${held} lines read before the first one was even answered`)
  assert.equal(exited, false, 'the program finished although its output was not read')
  release()
  const exit = await done
  assert.deepEqual(exit, { exitCode: 0, signal: null, aborted: false })
  assert.equal(received, total)
})
