/** Resource limits of SPEC section 1, enforced before any other work on a file. */
export const LIMITS = {
  maxFileBytes: 1024 * 1024,
  maxAliases: 100,
  maxDepth: 64,
  /** Nodes a document may expand to once aliases are followed (billion-laughs guard). */
  maxExpandedNodes: 200_000,
} as const

/** Tags of the YAML 1.2 core schema. Any other tag is refused rather than guessed at. */
export const ALLOWED_TAGS: ReadonlySet<string> = new Set([
  'tag:yaml.org,2002:str',
  'tag:yaml.org,2002:int',
  'tag:yaml.org,2002:float',
  'tag:yaml.org,2002:bool',
  'tag:yaml.org,2002:null',
  'tag:yaml.org,2002:map',
  'tag:yaml.org,2002:seq',
  '!',
])

/**
 * Finds the first flow bracket (`[` or `{`) nested deeper than `maxDepth`, skipping quoted strings
 * and comments. It runs before the parser because a deep flow nesting costs the parser seconds
 * (and its stack) long before any depth check on the tree could run.
 */
export function findDeepFlowNesting(text: string, maxDepth: number): number | undefined {
  let depth = 0
  let quote: '"' | "'" | undefined
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if (quote !== undefined) {
      if (quote === '"' && ch === 0x5c) i++ // backslash escape
      else if (ch === quote.charCodeAt(0)) quote = undefined
      continue
    }
    if (ch === 0x22 /* " */ || ch === 0x27 /* ' */) {
      // A quote only opens a string at the start of a scalar; inside a plain word (it's) it is text.
      const prev = i === 0 ? 0x20 : text.charCodeAt(i - 1)
      if (prev === 0x20 || prev === 0x0a || prev === 0x09 || prev === 0x5b || prev === 0x7b || prev === 0x2c || prev === 0x3a) {
        quote = ch === 0x22 ? '"' : "'"
      }
    } else if (ch === 0x23 /* # */) {
      const prev = i === 0 ? 0x20 : text.charCodeAt(i - 1)
      if (prev === 0x20 || prev === 0x0a || prev === 0x09) {
        while (i < text.length && text.charCodeAt(i) !== 0x0a) i++
      }
    } else if (ch === 0x5b || ch === 0x7b) {
      depth++
      if (depth > maxDepth) return i
    } else if (ch === 0x5d || ch === 0x7d) {
      if (depth > 0) depth--
    }
  }
  return undefined
}

/** Offset of the first character that is not allowed in a YAML stream (C0 controls other than tab, LF, CR; DEL; U+FFFE/U+FFFF). */
export function findForbiddenCharacter(text: string): number | undefined {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    if ((ch < 0x20 && ch !== 0x09 && ch !== 0x0a && ch !== 0x0d) || ch === 0x7f || ch === 0xfffe || ch === 0xffff) return i
  }
  return undefined
}
