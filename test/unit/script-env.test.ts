import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { scriptTemplates } from '../../engine/template/script-env.ts'

const VALUE = `$(echo RAN) \`echo RAN\` "dq" 'sq' \\ * ;x`

/** Runs the rewritten script with every template's variable set to VALUE and returns its stdout. */
function run(script: string): string {
  const found = scriptTemplates(script)
  assert.ok(found.ok, found.ok ? '' : found.message)
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  for (const v of found.variables) env[v.name] = VALUE
  return execFileSync('/bin/sh', ['-e', '-c', found.script], { env, encoding: 'utf8' })
}

test('a template stands for its value as one word, unquoted, in double and in single quotes', () => {
  assert.equal(run(`printf '<%s>' {{ x }}`), `<${VALUE}>`)
  assert.equal(run(`printf '<%s>' "a{{ x }}b"`), `<a${VALUE}b>`)
  assert.equal(run(`printf '<%s>' 'a{{ x }}b'`), `<a${VALUE}b>`)
})

test('escaped quotes and quotes of the other kind do not confuse the quoting', () => {
  assert.equal(run(`printf '<%s>' "it's \\"{{ x }}\\""`), `<it's "${VALUE}">`)
  assert.equal(run(`printf '<%s>' it\\'s{{ x }}`), `<it's${VALUE}>`)
  assert.equal(run(`printf '<%s>' 'say "{{ x }}"'`), `<say "${VALUE}">`)
})

test('each template gets its own variable, named in order', () => {
  const found = scriptTemplates('echo {{ a }} {{ b | upcase }}')
  assert.ok(found.ok)
  assert.deepEqual(found.variables, [
    { name: 'CAIRN_TEMPLATE_1', template: '{{ a }}' },
    { name: 'CAIRN_TEMPLATE_2', template: '{{ b | upcase }}' },
  ])
})

test('tags and unclosed templates are refused', () => {
  assert.equal(scriptTemplates('{% for i in (1..3) %}echo{% endfor %}').ok, false)
  assert.equal(scriptTemplates('echo {{ a').ok, false)
})

test('a quote in a comment quotes nothing', () => {
  assert.equal(run(`# don't "stop"\nprintf '<%s>' {{ x }} # it's {{ fine\n`.replace('{{ fine', 'fine')), `<${VALUE}>`)
  assert.equal(scriptTemplates('echo a # {{ x }}').ok, false)
  assert.equal(run(`printf '<%s>' a#{{ x }}`), `<a#${VALUE}>`)
})

test('here-documents: an expanding body gets the value as is; a quoted delimiter is refused', () => {
  assert.equal(run(`cat <<EOF\nline {{ x }} 'q'\nEOF\nprintf '<%s>' {{ x }}`), `line ${VALUE} 'q'\n<${VALUE}>`)
  assert.equal(run(`cat <<-END\n\tv={{ x }}\n\tEND\n`), `v=${VALUE}\n`)
  assert.equal(scriptTemplates(`cat <<'EOF'\n{{ x }}\nEOF\n`).ok, false)
  assert.equal(run(`cat <<'EOF'\n$HOME 'x'\nEOF\nprintf '<%s>' {{ x }}`), `$HOME 'x'\n<${VALUE}>`)
})
