/**
 * Quoting for a remote POSIX shell. An SSH "exec" request is a single string that the login shell of the
 * remote user parses, so every word cairn sends is single-quoted: inside '...' a POSIX shell interprets
 * nothing (no $, `, \, glob, newline or ;), and a single quote itself is written as '\'' (close, escaped
 * quote, reopen). No user string is ever placed in shell text any other way.
 */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new Error('a shell word cannot contain a NUL byte')
  return `'${word.replaceAll("'", `'\\''`)}'`
}

/** Every word single-quoted, separated by spaces. */
export function shellQuoteArgv(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ')
}
