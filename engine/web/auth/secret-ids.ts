/** Random bearer secrets (API tokens, session ids) and the SHA-256 digests the database keeps instead of them. */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto'

/** 32 random bytes, base64url: 256 bits, nothing to guess. */
export function randomSecret(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`
}

export function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer')
}

/** Constant-time comparison of two strings of any length. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}
