import { test } from 'node:test'
import assert from 'node:assert/strict'
import { escapeControls, escapeJsonControls } from '../../engine/cli/terminal-escape.ts'
import { printer } from '../../engine/cli/logs-command.ts'

const at = new Date('2026-01-02T03:04:05.678Z')

test('escapeControls shows C0 controls (but tab and newline), DEL and C1 controls as visible escapes', () => {
  assert.equal(escapeControls('\x1b[31mred\x1b[0m'), '\\x1b[31mred\\x1b[0m')
  assert.equal(escapeControls('title \x1b]0;pwned\x07'), 'title \\x1b]0;pwned\\x07')
  assert.equal(escapeControls('abc\rXYZ'), 'abc\\rXYZ')
  assert.equal(escapeControls('\u009b2J \u0090q\u009c'), '\\u009b2J \\u0090q\\u009c')
  assert.equal(escapeControls('a\x00b\x7fc\x08'), 'a\\x00b\\x7fc\\x08')
  assert.equal(escapeControls('tab\there\nnext'), 'tab\there\nnext')
  assert.equal(escapeControls('plain ünïcödé ✓ 日本'), 'plain ünïcödé ✓ 日本')
})

test('escapeJsonControls keeps JSON valid and equal while hiding DEL and C1 controls', () => {
  const value = { line: 'x\u009b2J\x7f\x1b' }
  const text = escapeJsonControls(JSON.stringify(value))
  assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f]/)
  assert.deepEqual(JSON.parse(text), value)
})

test('the logs printer escapes only when stdout is a terminal', () => {
  const line = { id: 1, stream: 'stdout' as const, line: 'red \x1b[31mRED', at }
  const printed = (tty: boolean, format: 'text' | 'json') => {
    const out: string[] = []
    printer({ stdout: (l) => out.push(l), stdoutIsTTY: tty }, format)(1, line)
    return out
  }
  assert.deepEqual(printed(false, 'text'), ['red \x1b[31mRED'])
  assert.deepEqual(printed(true, 'text'), ['red \\x1b[31mRED'])
  const json = printed(true, 'json')[0]!
  assert.doesNotMatch(json, /\x1b/)
  assert.equal(JSON.parse(json).line, 'red \x1b[31mRED')
})
