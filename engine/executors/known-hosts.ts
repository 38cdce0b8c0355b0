/**
 * Host key checking against an OpenSSH known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain,
 * comma-separated, wildcard and negated host patterns, `[host]:port` for a non-default port, hashed entries
 * (`|1|salt|hash`, HMAC-SHA1 of the name keyed with the salt) and the `@revoked` marker. The key blob the
 * server presents is compared byte for byte with the file's. Unknown keys are never accepted (no
 * trust-on-first-use).
 */
import { createHash, createHmac } from 'node:crypto'

export type HostKeyVerdict =
  | { ok: true }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked'; message: string }

interface KnownHostLine {
  marker: '' | '@revoked' | '@cert-authority'
  patterns: string
  keyType: string
  key: Buffer
}

/** SHA256:base64 without padding, as `ssh-keygen -l` and OpenSSH's warnings print it. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** The name OpenSSH looks up: `host` on port 22, else `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

export function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: KnownHostLine['marker'] = ''
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostLine['marker']
    const [patterns, keyType, key] = fields
    if (patterns === undefined || keyType === undefined || key === undefined) continue
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) continue
    lines.push({ marker, patterns, keyType, key: Buffer.from(key, 'base64') })
  }
  return lines
}

function wildcardMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`, 'i')
  return re.test(name)
}

function hashedMatch(entry: string, name: string): boolean {
  const parts = entry.split('|') // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2] ?? '', 'base64')
  const expected = Buffer.from(parts[3] ?? '', 'base64')
  const actual = createHmac('sha1', salt).update(name).digest()
  return actual.length === expected.length && actual.equals(expected)
}

/** Whether a known_hosts host field names `name` (a negated pattern that matches wins over the others). */
export function hostPatternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) return hashedMatch(patterns, name)
  let matched = false
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false
    } else if (wildcardMatch(pattern, name)) {
      matched = true
    }
  }
  return matched
}

/** The key type inside an SSH public key blob (its first string). */
function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return ''
  const length = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + length).toString('latin1')
}

/**
 * Checks the key blob a server presented for `host`:`port` against the text of a known_hosts file.
 * `label` names the host (and file) in the refusal message.
 */
export function checkHostKey(knownHostsText: string, host: string, port: number, keyBlob: Buffer, label: string): HostKeyVerdict {
  const name = knownHostsName(host, port)
  const fingerprint = sshFingerprint(keyBlob)
  const type = blobKeyType(keyBlob)
  const entries = parseKnownHosts(knownHostsText).filter((entry) => hostPatternsMatch(entry.patterns, name))
  if (entries.some((entry) => entry.marker === '@revoked' && entry.key.equals(keyBlob))) {
    return { ok: false, reason: 'revoked', message: `host key of ${name} (${type} ${fingerprint}) is marked @revoked in ${label}; refusing to connect` }
  }
  const plain = entries.filter((entry) => entry.marker === '')
  if (plain.some((entry) => entry.key.equals(keyBlob))) return { ok: true }
  if (plain.length > 0) {
    return {
      ok: false,
      reason: 'changed',
      message: `host key of ${name} has CHANGED: it presented ${type} ${fingerprint}, which does not match the key${plain.length > 1 ? 's' : ''} recorded in ${label} (${plain.map((entry) => `${entry.keyType} ${sshFingerprint(entry.key)}`).join(', ')}); refusing to connect (possible man-in-the-middle; if the host was re-installed, update ${label})`,
    }
  }
  return {
    ok: false,
    reason: 'unknown',
    message: `host key of ${name} is unknown: it presented ${type} ${fingerprint}, and ${label} has no entry for ${name}; refusing to connect (add the host's key, e.g. from ssh-keyscan after checking its fingerprint out of band)`,
  }
}
