/**
 * The pure parts of the ssh executor: single-quoting for a POSIX shell (checked by running real sh and dash on
 * the quoted words) and known_hosts matching (plain, lists, wildcards, negation, [host]:port, hashed entries as
 * OpenSSH's ssh-keygen -H writes them, @revoked, @cert-authority ignored) with OpenSSH's fingerprint format.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { checkHostKey, hostPatternsMatch, knownHostsName, sshFingerprint } from '../../engine/executors/known-hosts.ts'
import { shellQuote, shellQuoteArgv } from '../../engine/executors/shell-quote.ts'
import { rankCommand } from '../../engine/executors/ssh-remote-commands.ts'

const HOSTILE = ['a;b', '$(touch pwned)', '`touch pwned`', "it's", "''", '"', 'two words', 'l1\nl2\n', '*', '?', '[a]', '', '-n', '--', 'a\\b\\', '${HOME}', '$HOME', '\t', '~', '!', '#c', '& |', '<>', 'ünï €', "'; touch pwned; '"]

for (const shell of ['/bin/sh', '/bin/dash', '/bin/bash']) {
  test(`${shell} receives every quoted word byte for byte`, { skip: existsSync(shell) ? false : `${shell} missing` }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-quote-'))
    try {
      const out = execFileSync(shell, ['-c', `printf '%s\\0' ${shellQuoteArgv(HOSTILE)}`], { cwd: dir })
      assert.deepEqual(out.toString('utf8').split('\0').slice(0, -1), HOSTILE)
      assert.equal(existsSync(path.join(dir, 'pwned')), false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('shellQuote single-quotes and refuses NUL', () => {
  assert.equal(shellQuote("it's"), `'it'\\''s'`)
  assert.equal(shellQuote(''), "''")
  assert.throws(() => shellQuote('a\0b'), /NUL/)
})

test('the rank command passes workdir, env and argv only as quoted words of a fixed wrapper', () => {
  const command = rankCommand("/w d/$(x)", { A: "v'1" }, ['prog', '$(y)'])
  assert.match(command, /^exec setsid -w sh -c '/)
  assert.ok(command.endsWith(` 'cairn-rank' '/w d/$(x)' '/w d/$(x)/.cairn-ranks/rank-0' 'A=v'\\''1' '--' 'prog' '$(y)'`), command)
})

function keyBlob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519')
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const type = Buffer.from('ssh-ed25519')
  const blob = Buffer.alloc(4 + type.length + 4 + raw.length)
  blob.writeUInt32BE(type.length, 0)
  type.copy(blob, 4)
  blob.writeUInt32BE(raw.length, 4 + type.length)
  raw.copy(blob, 8 + type.length)
  return blob
}

function hashed(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

test('host patterns: names, lists, wildcards, negation, [host]:port, hashed', () => {
  assert.equal(knownHostsName('h', 22), 'h')
  assert.equal(knownHostsName('h', 2222), '[h]:2222')
  assert.equal(hostPatternsMatch('a.example,b.example', 'b.example'), true)
  assert.equal(hostPatternsMatch('a.example', 'a.examplex'), false)
  assert.equal(hostPatternsMatch('*.example', 'node1.example'), true)
  assert.equal(hostPatternsMatch('node?.example', 'node12.example'), false)
  assert.equal(hostPatternsMatch('*.example,!bad.example', 'bad.example'), false)
  assert.equal(hostPatternsMatch('[10.0.0.1]:2222', '[10.0.0.1]:2222'), true)
  assert.equal(hostPatternsMatch('10.0.0.1', '[10.0.0.1]:2222'), false)
  assert.equal(hostPatternsMatch('10.0.0.1', '10.0.0.10'), false)
  assert.equal(hostPatternsMatch(hashed('[h]:2222'), '[h]:2222'), true)
  assert.equal(hostPatternsMatch(hashed('[h]:2222'), '[h]:2223'), false)
})

test('checkHostKey accepts the recorded key only; unknown, changed and revoked keys are refused with fingerprints', () => {
  const key = keyBlob()
  const other = keyBlob()
  const line = (hosts: string, blob: Buffer, marker = '') => `${marker}${marker ? ' ' : ''}${hosts} ssh-ed25519 ${blob.toString('base64')}`
  const file = ['# comment', '', line('[h]:2222', key), line('other', other)].join('\n')
  assert.deepEqual(checkHostKey(file, 'h', 2222, key, 'kh'), { ok: true })
  const unknown = checkHostKey(file, 'h', 2223, key, 'kh')
  assert.equal(unknown.ok, false)
  if (!unknown.ok) {
    assert.equal(unknown.reason, 'unknown')
    assert.ok(unknown.message.includes('[h]:2223') && unknown.message.includes(sshFingerprint(key)), unknown.message)
  }
  const changed = checkHostKey(file, 'h', 2222, other, 'kh')
  assert.equal(changed.ok, false)
  if (!changed.ok) {
    assert.equal(changed.reason, 'changed')
    assert.ok(changed.message.includes(sshFingerprint(other)) && changed.message.includes(sshFingerprint(key)), changed.message)
  }
  const revoked = checkHostKey(`${file}\n${line('*', key, '@revoked')}`, 'h', 2222, key, 'kh')
  assert.equal(revoked.ok ? 'ok' : revoked.reason, 'revoked')
  // A CA line is not a host key.
  assert.equal(checkHostKey(line('h', key, '@cert-authority'), 'h', 22, key, 'kh').ok, false)
  assert.deepEqual(checkHostKey(line(hashed('h'), key), 'h', 22, key, 'kh'), { ok: true })
})

test('fingerprints are printed as ssh-keygen -l prints them', { skip: existsSync('/usr/bin/ssh-keygen') ? false : 'ssh-keygen missing' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-fp-'))
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')])
    const pub = readFileSync(path.join(dir, 'k.pub'), 'utf8').split(' ')
    const expected = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path.join(dir, 'k.pub')]).toString().split(' ')[1]
    assert.equal(sshFingerprint(Buffer.from(pub[1]!, 'base64')), expected)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
