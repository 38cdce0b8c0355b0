/**
 * Templates in a shell `script` (SPEC section 4: "run by /bin/sh -e with templated values passed as
 * environment variables, never spliced into the script text").
 *
 * Each `{{ ... }}` of the script is replaced by a reference to an environment variable
 * (CAIRN_TEMPLATE_1, CAIRN_TEMPLATE_2, ...), and the template itself is rendered into that variable.
 * The shell expands a variable once and never parses its value as code, so whatever a template
 * renders to (`$(rm -rf ~)`, quotes, backticks, newlines) stays data. The reference depends on the
 * quoting at that point of the script, so the value is always exactly one word, never globbed:
 *
 *   unquoted          {{ x }}       ->  "${CAIRN_TEMPLATE_1}"
 *   in "double"       "a{{ x }}b"   ->  "a${CAIRN_TEMPLATE_1}b"
 *   in 'single'       'a{{ x }}b'   ->  'a'"${CAIRN_TEMPLATE_1}"'b'
 *
 * The quoting is followed with the POSIX shell's rules for quotes and backslashes; a template in a
 * here-document or a comment is treated as unquoted text. Tags (`{% ... %}`) would need the script
 * itself to be rendered and are refused.
 */

export const SCRIPT_TEMPLATE_PREFIX = 'CAIRN_TEMPLATE_'

export type ScriptTemplates =
  | { ok: true; script: string; variables: { name: string; template: string }[] }
  | { ok: false; message: string }

export function scriptTemplates(script: string): ScriptTemplates {
  const variables: { name: string; template: string }[] = []
  let out = ''
  let quote: 'none' | 'single' | 'double' = 'none'
  let i = 0
  while (i < script.length) {
    const c = script[i]!
    if (c === '{' && script[i + 1] === '%') {
      return { ok: false, message: 'a script may use {{ ... }} values (passed as environment variables) but no {% ... %} tags' }
    }
    if (c === '{' && script[i + 1] === '{') {
      const end = script.indexOf('}}', i + 2)
      if (end < 0) return { ok: false, message: 'a {{ in the script is not closed by }}' }
      const name = `${SCRIPT_TEMPLATE_PREFIX}${variables.length + 1}`
      variables.push({ name, template: script.slice(i, end + 2) })
      out += quote === 'double' ? `\${${name}}` : quote === 'single' ? `'"\${${name}}"'` : `"\${${name}}"`
      i = end + 2
      continue
    }
    if (quote === 'single') {
      if (c === "'") quote = 'none'
    } else if (c === '\\' && i + 1 < script.length) {
      out += c + script[i + 1]!
      i += 2
      continue
    } else if (c === '"') {
      quote = quote === 'double' ? 'none' : 'double'
    } else if (c === "'" && quote === 'none') {
      quote = 'single'
    }
    out += c
    i++
  }
  return { ok: true, script: out, variables }
}
