/**
 * Task output printed to a terminal must not drive it: an escape sequence in a log line could move the
 * cursor, rewrite what is on the screen, set the window title, or (on some terminals) write to the
 * clipboard or answer with keystrokes. So `cairn logs` shows control characters as visible escapes
 * when its stdout is a terminal, and leaves the bytes alone when it is piped or redirected.
 */

// C0 controls except TAB (\t) and LF (\n), DEL, and the C1 controls U+0080..U+009F (U+009B is a
// one-character CSI on terminals that take 8-bit controls).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/** `\x1b[31m` for ESC [ 3 1 m; `\r` for CR; `\u009b` for a C1 control. */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (c) => {
    if (c === '\r') return '\\r'
    const code = c.charCodeAt(0)
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`
  })
}

/**
 * The same for JSON text meant for a terminal: JSON.stringify already writes C0 controls as \uXXXX,
 * but not DEL or C1 controls; those become \uXXXX too, which keeps the JSON valid and equal.
 */
export function escapeJsonControls(json: string): string {
  return json.replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
