/**
 * Hostile run parameters, end to end through a real worker process: shell syntax, quotes,
 * newlines, template syntax, variables, a 10 KB string and unicode must reach a `shell` task
 * literally, as argv (`command`, no shell) and as environment variables of a `script`, run
 * nothing, and arrive byte for byte. A value containing `{{ }}` is data: it is never rendered a
 * second time (so `{{ secrets.x }}` in a value does not read the secret).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine, taskWritableDir } from '../helpers/engine.ts'
import { logLines, taskRows, waitForDags } from '../helpers/run-rows.ts'
import { triggerRun } from '../../engine/store/control.ts'

const SECRET_X = 'secret-x-value-5d1e'

function hostileValues(marker: string): Record<string, string> {
  const big = Array.from({ length: 400 }, (_, i) => `${i}:$(touch ${marker})\`id\`;{{ 7*7 }}'"\n`).join('')
  return {
    subshell: `$(touch ${marker})`,
    backticks: `\`touch ${marker}\``,
    semicolon: `x; touch ${marker}`,
    and_and: `x && touch ${marker}`,
    pipe: `x | touch ${marker}`,
    redirect: `> ${marker} 2>&1 < /dev/null`,
    background: `x & touch ${marker} &`,
    quotes: `'single' "double" \\' \\" '"'"' "'"'"`,
    newlines: `first\nsecond; touch ${marker}\n\nthird\r\n`,
    liquid_expr: '{{ 7*7 }}',
    liquid_raw: '{% raw %}',
    liquid_raw_block: '{% raw %}{{ params.v_subshell }}{% endraw %}',
    liquid_tags: "{% assign x = 'y' %}{{ x }}{% if true %}yes{% endif %}{{ params.v_subshell | upcase }}",
    secret_ref: '{{ secrets.x }}',
    shell_vars: '${HOME} $HOME $0 $1 $@ $$ ${PATH:-none} $CAIRN_OUTPUTS',
    percent: '%s %n %d %% %x',
    backslashes: 'C:\\path\\new\\table \\\\ \\',
    glob: '* ?.ts [a-z]* ~ ~root',
    dashes: '--help',
    json: '{"a": [1, 2], "b": null}',
    empty: '',
    spaces: '  padded\ttabs  ',
    unicode: 'ünïcødé 中文 😀 👨‍👩‍👧 \u202e rtl \u200b zero-width \u00a0 nbsp e\u0301',
    big,
  }
}

const RECORD_ARGV = "require('fs').writeFileSync(process.env.OUT, JSON.stringify(process.argv.slice(1)))"

function hostileDag(names: readonly string[], files: string): string {
  const q = JSON.stringify
  const lines = ['dag: hostile', 'max_active_tasks: 100', 'params:', ...names.map((n) => `  v_${n}: { type: string }`), '  obj: { type: object }', 'tasks:']
  for (const n of names) {
    lines.push(
      `  argv_${n}:`,
      '    operator: shell',
      `    env: { OUT: ${q(join(files, `argv_${n}.json`))} }`,
      // `--` ends node's own options: a value like --help is the script's argument, not node's.
      `    params: { command: [${q(process.execPath)}, -e, ${q(RECORD_ARGV)}, "--", "{{ params.v_${n} }}", "<{{ params.v_${n} }}>"] }`,
      `  env_${n}:`,
      '    operator: shell',
      `    env: { OUT: ${q(join(files, `env_${n}.txt`))}, V: "{{ params.v_${n} }}" }`,
      `    params: { script: 'printf %s "$V" > "$OUT"' }`,
    )
  }
  lines.push(
    '  argv_obj:',
    '    operator: shell',
    `    env: { OUT: ${q(join(files, 'argv_obj.json'))} }`,
    `    params: { command: [${q(process.execPath)}, -e, ${q(RECORD_ARGV)}, "--", "{{ params.obj | json }}"] }`,
  )
  return `${lines.join('\n')}\n`
}

test('hostile run params reach shell tasks literally through argv and env, and run nothing', async (t) => {
  const engine = await startTestEngine(t, { dags: {} })
  // Tasks run as the unprivileged task user: the marker goes where that user could write it.
  const files = taskWritableDir(join(engine.dir, 'files'))
  const marker = join(files, 'pwned')
  const values = hostileValues(marker)
  const names = Object.keys(values)
  assert.ok(values.big!.length >= 10 * 1024, `the big value is ${values.big!.length} chars`)
  const obj = { cmd: `$(touch ${marker})`, tpl: '{{ 7*7 }}', nested: { quote: `'"`, list: ['`id`', '; rm -rf /'] } }
  engine.writeDag('hostile.yaml', hostileDag(names, files))
  await waitForDags(engine.db, ['hostile'])
  engine.spawnWorker({ slots: 8, env: { CAIRN_SECRET_X: SECRET_X } })

  const runId = await engine.trigger('hostile', { ...Object.fromEntries(names.map((n) => [`v_${n}`, values[n]])), obj })
  const state = await engine.waitForRun(runId, 90_000)
  assert.equal(state, 'success', JSON.stringify(await engine.taskStates(runId)))

  assert.equal(existsSync(marker), false, 'a hostile value was executed')
  assert.deepEqual(readdirSync(files).filter((f) => f.includes('pwned')), [])
  for (const n of names) {
    const value = values[n]!
    const argv = JSON.parse(readFileSync(join(files, `argv_${n}.json`), 'utf8')) as unknown
    assert.deepEqual(argv, [value, `<${value}>`], `argv of ${n}`)
    const env = readFileSync(join(files, `env_${n}.txt`))
    assert.ok(env.equals(Buffer.from(value, 'utf8')), `env of ${n}: got ${JSON.stringify(env.toString('utf8').slice(0, 200))}`)
  }
  const [objArg] = JSON.parse(readFileSync(join(files, 'argv_obj.json'), 'utf8')) as [string]
  assert.deepEqual(JSON.parse(objArg), obj)

  // `{{ secrets.x }}` in a value stayed data: the secret was never read, not even into a log.
  const rows = await taskRows(engine.db, runId)
  assert.equal(rows.get('argv_secret_ref')!.state, 'success')
  const logged = (await logLines(engine.db, runId, 'argv_secret_ref')).map((l) => l.line).join('\n')
  assert.ok(logged.includes('{{ secrets.x }}'), logged)
  const { rows: dump } = await engine.db.query<{ text: string }>('SELECT row_to_json(x)::text AS text FROM cairn.task_log x WHERE run_id = $1', [runId])
  assert.deepEqual(dump.filter((r) => r.text.includes(SECRET_X) || r.text.includes('***')), [])
})

test('values Postgres cannot store (NUL, a lone surrogate) are refused as invalid params, not a database error', async (t) => {
  const engine = await startTestEngine(t, {
    dags: { 'store.yaml': 'dag: store\nparams:\n  v: { type: string, default: ok }\n  o: { type: object, default: {} }\ntasks:\n  a: { operator: noop }\n' },
  })
  await waitForDags(engine.db, ['store'])
  const cases: [string, Record<string, unknown>][] = [
    ['v', { v: 'nul\u0000byte' }],
    ['v', { v: 'lone \ud800 surrogate' }],
    ['v', { v: 'lone \udc00 low surrogate' }],
    ['o', { o: { nested: ['fine', 'nul\u0000'] } }],
    ['o', { o: { 'key\u0000': 1 } }],
  ]
  for (const [name, params] of cases) {
    const result = await engine.db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'store', params }))
    assert.equal(result.ok, false, JSON.stringify(params))
    assert.ok(!result.ok && result.code === 'invalid_params' && result.message.includes(`parameter "${name}" contains a NUL`), JSON.stringify(result))
  }
  // Well-formed surrogate pairs (emoji) are fine.
  const ok = await engine.db.tx((q) => triggerRun(q, { now: () => new Date() }, { dagId: 'store', params: { v: '😀 \ud83d\ude00' } }))
  assert.equal(ok.ok, true, JSON.stringify(ok))
})
