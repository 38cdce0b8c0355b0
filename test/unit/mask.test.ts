import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { MASK, MIN_SECRET_LENGTH, createMasker, maskDeep } from '../../engine/secrets/mask.ts'
import { createSecretStore, isValidSecretName } from '../../engine/secrets/secrets.ts'

test('every occurrence of every secret becomes ***', () => {
  const mask = createMasker(['s3cret', 'tok-abc'])
  assert.equal(mask('a s3cret b s3cret tok-abc'), `a ${MASK} b ${MASK} ${MASK}`)
  assert.equal(mask('nothing here'), 'nothing here')
  assert.equal(mask(''), '')
})

test('longest first: a secret containing another is masked whole', () => {
  const mask = createMasker(['pass', 'password123'])
  assert.equal(mask('x password123 y pass'), `x ${MASK} y ${MASK}`)
  const reversed = createMasker(['password123', 'pass'])
  assert.equal(reversed('password123'), MASK)
})

test('regex metacharacters in secrets are matched literally', () => {
  const mask = createMasker(['a.b*c', '(x|y)+', '$1\\d'])
  assert.equal(mask('a.b*c aXbc (x|y)+ xy $1\\d'), `${MASK} aXbc ${MASK} xy ${MASK}`)
})

test(`values shorter than ${MIN_SECRET_LENGTH} characters are ignored`, () => {
  const mask = createMasker(['', 'a', 'ab', 'abc'])
  assert.equal(mask('a ab abc'), `a ab ${MASK}`)
  assert.equal(createMasker([])('anything'), 'anything')
})

test('JSON-escaped, URL-encoded and per-line forms are masked too', () => {
  const quoted = 'pa"ss\\word'
  const mask = createMasker([quoted])
  assert.equal(mask(JSON.stringify({ password: quoted })), `{"password":"${MASK}"}`)
  assert.equal(mask(`raw ${quoted}`), `raw ${MASK}`)

  const url = createMasker(['p@ss:w/rd'])
  assert.equal(url('postgres://u:p%40ss%3Aw%2Frd@db/x'), `postgres://u:${MASK}@db/x`)

  const pem = '-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----'
  const lines = createMasker([pem])
  assert.equal(lines('MIIBOgIBAAJBAK'), MASK)
  assert.equal(lines(JSON.stringify(pem)), `"${MASK}"`)
})

test('deep masking of outputs: strings and keys, nested, other values kept', () => {
  const mask = createMasker(['tok-123'])
  const outputs = { url: 'https://x?t=tok-123', nested: [{ 'tok-123': 1, n: 2, b: true, z: null }], count: 3 }
  assert.deepEqual(mask.deep(outputs), { url: `https://x?t=${MASK}`, nested: [{ [MASK]: 1, n: 2, b: true, z: null }], count: 3 })
  assert.deepEqual(outputs.nested[0], { 'tok-123': 1, n: 2, b: true, z: null }, 'the input is not modified')
  assert.deepEqual(maskDeep(['tok-123 x'], ['tok-123']), [`${MASK} x`])
  assert.doesNotMatch(JSON.stringify(mask.deep(outputs)), /tok-123/)
})

test('secret store: environment first (name upper-cased), then the dir, one trailing newline trimmed', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-secrets-'))
  try {
    writeFileSync(path.join(dir, 'api'), 'from-file\n')
    writeFileSync(path.join(dir, 'db'), 'line1\nline2\n\n')
    writeFileSync(path.join(dir, 'crlf'), 'value\r\n')
    mkdirSync(path.join(dir, 'folder'))
    const store = createSecretStore({ env: { CAIRN_SECRET_API: 'from-env', CAIRN_SECRET_EMPTY: '' }, dir })
    assert.equal(store.get('api'), 'from-env')
    assert.equal(store.get('API'), 'from-env')
    assert.equal(store.get('db'), 'line1\nline2\n')
    assert.equal(store.get('crlf'), 'value')
    assert.equal(store.get('EMPTY'), '')
    assert.equal(store.get('missing'), undefined)
    assert.throws(() => store.get('folder'), (error: Error) => /cannot read a secret's file/.test(error.message) && !error.message.includes('folder'))
    assert.equal(createSecretStore({ env: {} }).get('api'), undefined)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('secret store refuses names that could leave the dir', () => {
  const store = createSecretStore({ env: {}, dir: '/etc' })
  for (const name of ['../passwd', 'a/b', '/etc/passwd', '..', 'a..b', '.hidden', '', 'a\0b', 'x y']) {
    assert.equal(isValidSecretName(name), false, JSON.stringify(name))
    assert.throws(() => store.get(name), /invalid secret name/, JSON.stringify(name))
  }
  for (const name of ['API_TOKEN', 'db-password', 'tls.key', '0day']) assert.equal(isValidSecretName(name), true, name)
})
