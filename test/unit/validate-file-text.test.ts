/**
 * validateFile reads a file as text and validates that (validateText); files that are not valid
 * UTF-8, or cannot be read, are read again as bytes. Either way the diagnostics must be exactly
 * those of validateSource on the file's bytes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateFile } from '../../engine/dag/validate-folder.ts'
import { validateSource } from '../../engine/dag/validate.ts'

const fixtures = new URL('../fixtures/dags/', import.meta.url).pathname

test('validateFile (text) reports exactly what validateSource reports on the bytes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-validate-text-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const valid = readFileSync(join(fixtures, 'valid', 'churn-daily.yaml'))
  const text = valid.toString('utf8')
  const cases: [string, Uint8Array][] = [
    ['plain.yaml', valid],
    ['bom.yaml', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), valid])],
    ['bom-only.yaml', Buffer.from([0xef, 0xbb, 0xbf])],
    ['empty.yaml', Buffer.alloc(0)],
    ['invalid-utf8.yaml', Buffer.concat([valid.subarray(0, 40), Buffer.from([0xc3, 0x28]), valid.subarray(40)])],
    ['surrogate-cesu.yaml', Buffer.concat([Buffer.from('dag: x\ndescription: '), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\ntasks: { a: { operator: noop } }\n')])],
    ['replacement-char.yaml', Buffer.from(text.replace('description:', 'description: \ufffd'))],
    ['crlf.yaml', Buffer.from(text.replace(/\n/g, '\r\n'))],
    ['bad-task.yaml', Buffer.from(text.replace('operator: shell', 'operator: shel'))],
    ['non-ascii.yaml', Buffer.from(text.replace('description:', 'description: café 😀 日本'))],
  ]
  for (const name of readdirSync(join(fixtures, 'invalid')).sort()) cases.push([`invalid-${name}`, readFileSync(join(fixtures, 'invalid', name))])
  for (const [name, bytes] of cases) {
    const path = join(dir, name)
    writeFileSync(path, bytes)
    const expected = validateSource(path, bytes).diagnostics
    assert.deepEqual(validateFile(path).diagnostics, expected, name)
  }
  // Unreadable: the message is the one reading the bytes gives.
  mkdirSync(join(dir, 'folder.yaml'))
  for (const name of ['folder.yaml', 'missing.yaml']) {
    const path = join(dir, name)
    let reason = ''
    try {
      readFileSync(path)
    } catch (error) {
      reason = (error as Error).message
    }
    assert.deepEqual(validateFile(path).diagnostics, [{ file: path, line: 1, column: 1, path: '', code: 'FILE_READ', message: `cannot read file: ${reason}`, severity: 'error' }])
  }
})
