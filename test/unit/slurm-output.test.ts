import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { RankLine } from '../../engine/executors/executor.ts'
import { OutputTail } from '../../engine/executors/slurm-output.ts'

test('srun --label lines become rank lines; partial lines wait; a restarted file is read again', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'slurm-output-')), 'job.out')
  const lines: RankLine[] = []
  const tail = new OutputTail(file, 'stderr', (line) => void lines.push(line), (rank) => ['n1', 'n2'][rank])
  await tail.read() // no file yet
  writeFileSync(file, '0: héllo\n 1: a: b\nsrun: error: no label\n1: unfini')
  await tail.read()
  assert.deepEqual(lines, [
    { rank: 0, host: 'n1', stream: 'stderr', line: 'héllo' },
    { rank: 1, host: 'n2', stream: 'stderr', line: 'a: b' },
    { rank: -1, stream: 'stderr', line: 'srun: error: no label' },
  ])
  appendFileSync(file, 'shed\n0: ')
  await tail.read()
  assert.deepEqual(lines.at(-1), { rank: 1, host: 'n2', stream: 'stderr', line: 'unfinished' })
  await tail.read(true)
  assert.deepEqual(lines.at(-1), { rank: 0, host: 'n1', stream: 'stderr', line: '' })
  // Requeued: Slurm starts the file again.
  writeFileSync(file, '1: again\n')
  await tail.read()
  assert.deepEqual(lines.at(-1), { rank: 1, host: 'n2', stream: 'stderr', line: 'again' })
  // A line without end is passed on in pieces.
  appendFileSync(file, `0: ${'x'.repeat(200_000)}`)
  const before = lines.length
  await tail.read()
  assert.ok(lines.length > before, 'a 200 kB line without a newline is passed on before it ends')
})
