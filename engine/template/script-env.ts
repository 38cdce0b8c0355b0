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
 *   here-document     <<EOF ... {{ x }} ... EOF   ->  ${CAIRN_TEMPLATE_1}
 *
 * The quoting is followed with the POSIX shell's rules for quotes, backslashes, comments and
 * here-documents. Refused: tags (`{% ... %}`, they would need the script itself to be rendered), a
 * template in a here-document with a quoted delimiter (<<'EOF' expands nothing) or in a comment.
 */

export const SCRIPT_TEMPLATE_PREFIX = 'CAIRN_TEMPLATE_'

export type ScriptTemplates =
  | { ok: true; script: string; variables: { name: string; template: string }[] }
  | { ok: false; message: string }

export function scriptTemplates(script: string): ScriptTemplates {
  const variables: { name: string; template: string }[] = []
  let out = ''
  let quote: 'none' | 'single' | 'double' = 'none'
  /** Here-documents whose bodies start at the next newline, in order. */
  const pendingHeredocs: { delimiter: string; stripTabs: boolean; expands: boolean }[] = []
  let i = 0
  const template = (): { end: number; name: string } | string => {
    const end = script.indexOf('}}', i + 2)
    if (end < 0) return 'a {{ in the script is not closed by }}'
    const name = `${SCRIPT_TEMPLATE_PREFIX}${variables.length + 1}`
    variables.push({ name, template: script.slice(i, end + 2) })
    return { end: end + 2, name }
  }
  while (i < script.length) {
    const c = script[i]!
    if (c === '{' && script[i + 1] === '%') {
      return { ok: false, message: 'a script may use {{ ... }} values (passed as environment variables) but no {% ... %} tags' }
    }
    if (c === '{' && script[i + 1] === '{') {
      const found = template()
      if (typeof found === 'string') return { ok: false, message: found }
      out += quote === 'double' ? `\${${found.name}}` : quote === 'single' ? `'"\${${found.name}}"'` : `"\${${found.name}}"`
      i = found.end
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
    } else if (quote === 'none') {
      if (c === "'") quote = 'single'
      else if (c === '#' && (i === 0 || /[\s;&|()]/.test(script[i - 1]!))) {
        // A comment runs to the end of the line; its quotes quote nothing.
        const newline = script.indexOf('\n', i)
        const stop = newline < 0 ? script.length : newline
        const text = script.slice(i, stop)
        if (text.includes('{{') || text.includes('{%')) return { ok: false, message: 'a template in a comment of the script would never be used' }
        out += text
        i = stop
        continue
      } else if (c === '<' && script[i + 1] === '<' && script[i + 2] !== '<') {
        const match = /^<<(-?)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|\\?([^\s;&|()<>'"]+))/.exec(script.slice(i))
        if (match) {
          const quoted = match[2] !== undefined || match[3] !== undefined || match[0].includes('\\')
          pendingHeredocs.push({ delimiter: (match[2] ?? match[3] ?? match[4])!, stripTabs: match[1] === '-', expands: !quoted })
          out += match[0]
          i += match[0].length
          continue
        }
      } else if (c === '\n' && pendingHeredocs.length > 0) {
        out += c
        i++
        for (const doc of pendingHeredocs.splice(0)) {
          // The body: lines up to the delimiter line. An expanding body reads ${NAME} as is (no word
          // splitting there); a quoted delimiter's body expands nothing, so a template cannot work.
          for (;;) {
            if (i >= script.length) break
            const newline = script.indexOf('\n', i)
            const stop = newline < 0 ? script.length : newline
            const line = script.slice(i, stop)
            if ((doc.stripTabs ? line.replace(/^\t+/, '') : line) === doc.delimiter) {
              out += line
              i = stop
              break
            }
            let rewritten = ''
            for (let j = 0; j < line.length; ) {
              if (line[j] === '{' && (line[j + 1] === '{' || line[j + 1] === '%')) {
                if (line[j + 1] === '%' || !doc.expands) {
                  return { ok: false, message: line[j + 1] === '%' ? 'a script may use {{ ... }} values (passed as environment variables) but no {% ... %} tags' : `a template in the here-document <<'${doc.delimiter}' would stay as written (its delimiter is quoted)` }
                }
                const end = line.indexOf('}}', j + 2)
                if (end < 0) return { ok: false, message: 'a {{ in the script is not closed by }}' }
                const name = `${SCRIPT_TEMPLATE_PREFIX}${variables.length + 1}`
                variables.push({ name, template: line.slice(j, end + 2) })
                rewritten += `\${${name}}`
                j = end + 2
              } else rewritten += line[j++]
            }
            out += rewritten + (newline < 0 ? '' : '\n')
            i = newline < 0 ? script.length : stop + 1
          }
        }
        continue
      }
    }
    out += c
    i++
  }
  return { ok: true, script: out, variables }
}
