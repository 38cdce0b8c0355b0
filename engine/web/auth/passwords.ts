/**
 * Passwords: which ones a user may choose, and their hashes.
 *
 * Strength: besides a minimum length, a new password must not be guessable: zxcvbn (the zxcvbn-ts port,
 * with its common-password, name and word lists) estimates how many guesses an attacker needs, trying
 * the most used passwords, words, names, keyboard walks, dates, repeats and l33t spellings first. A
 * password must need at least 10^8 guesses (zxcvbn score 3), so `password` and `Password1!` are refused.
 *
 * Hashes: argon2id (@node-rs/argon2, its native binary ships inside the npm package) with the
 * library's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum for argon2id), about 70 ms a hash here.
 */
import { hash, verify } from '@node-rs/argon2'
import { ZxcvbnFactory } from '@zxcvbn-ts/core'
import type { ZxcvbnResult } from '@zxcvbn-ts/core'
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common'

const MIN_PASSWORD_LENGTH = 8
/** Bounds the work an attacker can ask of a login (argon2 hashes any length, but reads all of it). */
export const MAX_PASSWORD_LENGTH = 1024
/** zxcvbn score a new password needs: 3 = at least 10^8 guesses ("safely unguessable" online). */
const MIN_PASSWORD_SCORE = 3
/** zxcvbn's run time grows with length; past this the length alone makes a password strong enough to skip it. */
const ESTIMATE_UP_TO = 100

/** Why zxcvbn found a password weak, in words (its own texts need a translation package). */
const WARNINGS: Record<string, string> = {
  topTen: 'too common: it is one of the ten most used passwords',
  topHundred: 'too common: it is one of the hundred most used passwords',
  common: 'too common: it is on lists of frequently used passwords',
  similarToCommon: 'too common: it is a small change to a frequently used password',
  pwned: 'too common: it has appeared in password leaks',
  wordByItself: 'too guessable: a single word is easy to guess',
  namesByThemselves: 'too guessable: names on their own are easy to guess',
  commonNames: 'too guessable: common names are easy to guess',
  userInputs: 'too guessable: it contains the user name',
  straightRow: 'too guessable: it is a straight row of keys',
  keyPattern: 'too guessable: it is a short keyboard pattern',
  simpleRepeat: 'too guessable: it repeats characters like "aaa"',
  extendedRepeat: 'too guessable: it repeats a pattern like "abcabc"',
  sequences: 'too guessable: it is a sequence like "abc" or "6543"',
  recentYears: 'too guessable: it is built on a recent year',
  dates: 'too guessable: it is built on a date',
}

let estimator: ZxcvbnFactory | undefined

/** Why `password` may not be chosen (by the user `username`), or undefined when it may. */
export function passwordProblem(password: string, username?: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password must have at least ${MIN_PASSWORD_LENGTH} characters`
  if (password.length > MAX_PASSWORD_LENGTH) return `the password must have at most ${MAX_PASSWORD_LENGTH} characters`
  if (password.length > ESTIMATE_UP_TO) return undefined
  estimator ??= new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs })
  const result = estimator.check(password, username ? [username] : [])
  return result.score >= MIN_PASSWORD_SCORE ? undefined : weakness(result)
}

function weakness(result: ZxcvbnResult): string {
  const known = result.feedback.warning ? WARNINGS[result.feedback.warning] : undefined
  const why = known ?? 'too guessable: it would fall to an attacker trying likely passwords'
  return `the password is ${why}; use a longer one, e.g. several unrelated words`
}

export function hashPassword(password: string): Promise<string> {
  return hash(password)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false // a malformed stored hash lets nobody in
  }
}

let dummy: Promise<string> | undefined

/**
 * Spends the time of one verification without a user to verify, so an unknown user name takes as long
 * to refuse as a wrong password (the answer's timing does not tell which names exist).
 */
export async function verifyNobody(password: string): Promise<false> {
  await verifyPassword(await (dummy ??= hashPassword('cairn-no-such-user')), password)
  return false
}
