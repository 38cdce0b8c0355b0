/**
 * What the parts of the plain-YAML reader (yaml-plain.ts) share while they read one text: the text,
 * the position, the nesting depth, the way to give up, and the limits and characters they all test.
 * One object rather than parameters: the reader is synchronous and reads one text at a time, and
 * this keeps each step free of allocations.
 */

/** Thrown to give up; caught in parsePlainYaml. */
export const GIVE_UP: unique symbol = Symbol('give up')
/** Collections nested deeper than this are left to the other paths (which enforce the real limit). */
export const MAX_DEPTH = 32
/** The `yaml` package refuses implicit keys longer than 1024 characters. */
export const MAX_KEY = 1000

export const NL = 0x0a
export const SPACE = 0x20
export const HASH = 0x23

export const cursor = {
  src: '',
  /** Whether the text did not end with a line feed (src has one added): a block scalar reaching the end then keeps no final line break. */
  unterminated: false,
  /** Where reading is (`pos` in the readers' comments); most steps leave it at the start of a line. */
  pos: 0,
  /** Collections open around `pos`, against MAX_DEPTH. */
  depth: 0,
  /** Offset of the next `#` at or after the last place looked from (2^32 - 1 when there is none): found once per `#`, not per line. */
  nextHash: 0,
}

export function giveUp(): never {
  throw GIVE_UP
}
