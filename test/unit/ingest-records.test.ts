/** Pure parts of ingest: the CSV record scanner's line numbers, JSONL line arithmetic, URLs shown without credentials. */
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { locateRecords, readHeader, splitRecord } from '../../engine/data/reader/csv-records.ts'
import { lineOfOrdinal } from '../../engine/data/reader/jsonl.ts'
import { publicUrl } from '../../operators/ingest/http.ts'

test('csv records: quoted line breaks, CRLF, blank lines and rejected records', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-records-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'a.csv')
  // Lines: 1 header, 2 a, 3 blank, 4-5 quoted break, 6 rejected, 7 d (CRLF endings throughout).
  writeFileSync(file, ['\uFEFFid,"na,me"', '1,a', '', '2,"b', 'b"', '3,too,many', '4,d', ''].join('\r\n'))
  assert.deepEqual(await readHeader(file, ','), ['id', 'na,me'])
  // DuckDB counts the quoted record as one line: it names the rejected record line 5, not 6.
  const { kept, rejectedAt } = await locateRecords(file, true, new Set([5]), [0, 1, 2])
  assert.deepEqual([...kept.entries()].map(([o, s]) => [o, s.line, s.text]), [[0, 2, '1,a'], [1, 4, '2,"b\r\nb"'], [2, 7, '4,d']])
  assert.deepEqual([...rejectedAt.entries()], [[5, 6]])
  assert.deepEqual(splitRecord('a,"b ""c"", d",,e', ','), ['a', 'b "c", d', '', 'e'])
})

test('jsonl: the line of a kept line, given the rejected ones', () => {
  assert.equal(lineOfOrdinal(0, []), 1)
  assert.equal(lineOfOrdinal(4, []), 5)
  assert.equal(lineOfOrdinal(1, [2]), 3)
  assert.equal(lineOfOrdinal(1, [1, 2]), 4)
  assert.equal(lineOfOrdinal(0, [5]), 1)
})

test('http: URLs are shown without user, password, query or fragment', () => {
  assert.equal(publicUrl('https://alice:s3cret@example.com:8443/a/b.csv?token=x#y'), 'https://example.com:8443/a/b.csv')
  assert.equal(publicUrl('not a url'), '(an unparsable URL)')
})
