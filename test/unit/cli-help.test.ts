import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../engine/cli/main.ts'
import { COMMANDS } from '../../engine/cli/commands.ts'
import { asksForHelp } from '../../engine/cli/help.ts'
import { settingsFromEnv } from '../../engine/config/settings.ts'

async function cairn(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = []
  const err: string[] = []
  // An unreachable database: a command that tried to connect instead of printing help would fail.
  const settings = settingsFromEnv({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, tmpdir())
  const code = await main(argv, { settings, stdout: (l) => out.push(l), stderr: (l) => err.push(l) })
  return { code, stdout: out.join('\n'), stderr: err.join('\n') }
}

test('every command answers --help and `cairn help COMMAND` with its usage, exit 0', async () => {
  const names = Object.keys(COMMANDS)
  for (const name of names) {
    const flag = await cairn([name, '--help'])
    assert.equal(flag.code, 0, `${name} --help: ${flag.stderr}`)
    assert.match(flag.stdout, new RegExp(`^usage: cairn ${name}\\b`), name)
    assert.ok(flag.stdout.split('\n').length >= 3, `${name} --help says more than the usage line`)
    assert.equal(flag.stderr, '')
    const short = await cairn([name, '-h'])
    assert.equal(short.stdout, flag.stdout)
    const help = await cairn(['help', name])
    assert.equal(help.code, 0)
    assert.equal(help.stdout, flag.stdout, `cairn help ${name} prints what ${name} --help prints`)
  }
})

test('the usage lines cover the commands being added alongside (db prune, tokens, users disable, logs --tail)', async () => {
  assert.match((await cairn(['db', '--help'])).stdout, /cairn db prune --older-than AGE/)
  assert.match((await cairn(['db', 'prune', '--help'])).stdout, /cairn db prune --older-than AGE/)
  const tokens = (await cairn(['help', 'tokens'])).stdout
  for (const form of ['cairn tokens create NAME --role R [--expires 90d] [--owner U]', 'cairn tokens list', 'cairn tokens revoke NAME']) assert.ok(tokens.includes(form), form)
  assert.ok((await cairn(['users', '--help'])).stdout.includes('cairn users disable NAME'))
  assert.ok((await cairn(['users', '--help'])).stdout.includes('cairn users enable NAME'))
  assert.match((await cairn(['logs', '--help'])).stdout, /--tail N/)
  for (const name of ['up', 'scheduler', 'worker', 'web']) assert.match((await cairn([name, '--help'])).stdout, /--log-format/)
})

test('`cairn help`, `cairn --help` and `cairn -h` list every command, exit 0; no command at all is a usage error', async () => {
  const help = await cairn(['help'])
  assert.equal(help.code, 0)
  for (const name of Object.keys(COMMANDS)) assert.match(help.stdout, new RegExp(`^  ${name} +\\S`, 'm'), name)
  assert.equal((await cairn(['--help'])).stdout, help.stdout)
  assert.equal((await cairn(['-h'])).stdout, help.stdout)
  const none = await cairn([])
  assert.equal(none.code, 2)
  assert.equal(none.stdout, '')
  assert.match(none.stderr, /^usage: cairn <command>/)
})

test('a mistyped command exits 2 with a suggestion; an unknown one without', async () => {
  const typo = await cairn(['valdate', 'dags'])
  assert.equal(typo.code, 2)
  assert.match(typo.stderr, /unknown command "valdate"; did you mean "validate"\?/)
  assert.equal((await cairn(['tokn'])).stderr.split('\n')[0], 'cairn: unknown command "tokn"; did you mean "tokens"?')
  const helpTypo = await cairn(['help', 'trigge'])
  assert.equal(helpTypo.code, 2)
  assert.match(helpTypo.stderr, /did you mean "trigger"\?/)
  const unknown = await cairn(['frobnicate'])
  assert.equal(unknown.code, 2)
  assert.doesNotMatch(unknown.stderr, /did you mean/)
})

test('--help after `--` is an argument, not a request for help', () => {
  assert.equal(asksForHelp(['d', '--param', 'x=1', '--help']), true)
  assert.equal(asksForHelp(['d', '--', '--help']), false)
  assert.equal(asksForHelp(['d', 'x=--help']), false)
})

test('the real bin answers --help for the long-running commands without starting anything', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cairn-help-'))
  try {
    const bin = new URL('../../bin/cairn.js', import.meta.url).pathname
    for (const name of ['validate', 'up', 'scheduler', 'worker', 'web']) {
      const run = spawnSync(process.execPath, [bin, name, '--help'], { cwd, encoding: 'utf8', env: { ...process.env, CAIRN_HOME: join(cwd, 'home') } })
      assert.equal(run.status, 0, `${name}: ${run.stderr}`)
      assert.match(run.stdout, new RegExp(`^usage: cairn ${name}`))
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true })
  }
})

test('a reader that goes away (`cairn help | head -0`) ends the command quietly, without a stack trace', async () => {
  const { spawn } = await import('node:child_process')
  const main = new URL('../../engine/cli/main.ts', import.meta.url).pathname
  const child = spawn(process.execPath, [main, 'help'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } })
  child.stdout.destroy() // no reader left: the child's first write fails with EPIPE
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  assert.equal(stderr, '')
  assert.equal(code, 0)
})
