/**
 * A task cannot become admin: run by a real `cairn worker` process started as root (as CI runs), a
 * shell task tries what a hostile DAG author would — the worker's environment through
 * /proc/$PPID/environ, the embedded database's state file with its password, CAIRN_HOME and the
 * secrets dir, a Postgres connection with whatever credentials it found — and gets nowhere, while
 * it still runs, gets the secret its own template names and publishes outputs. Also: `workdir`
 * stays inside the attempt's folder.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestEngine } from '../helpers/engine.ts'
import type { TestEngine } from '../helpers/engine.ts'
import { testServer } from '../helpers/postgres.ts'
import { EMBEDDED_STATE_FILE } from '../../engine/store/embedded-state.ts'
import { DEFAULT_TASK_USER } from '../../engine/process/task-user.ts'
import { taskRows, waitFor, waitForDags } from '../helpers/run-rows.ts'

const TOKEN = 'tok-isolation-7c1e55d0'
const OTHER = 'other-isolation-91fd02aa'
const FILE_SECRET = 'file-isolation-3b8e77c4'
const RUN_TIMEOUT_MS = 60_000

if (process.getuid?.() !== 0) {
  if (process.env.CI === 'true') throw new Error('task isolation tests need root (CI runs as root)')
  test('task isolation (needs root to switch users)', { skip: 'not running as root' }, () => {})
} else {
  await isolationTests()
}

async function isolationTests(): Promise<void> {
  const server = await testServer()
  const stateFile = server.embedded ? join(server.embedded.dataDir, EMBEDDED_STATE_FILE) : '/nonexistent'
  const engine: TestEngine = await startTestEngine({ after }, { dags: {} })
  const pgPort = new URL(engine.url).port
  const home = join(engine.dir, 'home')
  mkdirSync(join(home, 'secrets'), { recursive: true })
  writeFileSync(join(home, 'secrets', 'from_file'), `${FILE_SECRET}\n`)
  writeFileSync(join(engine.dir, 'cairn.yaml'), 'secrets:\n  dir: home/secrets\n')

  const probe = `dag: probe
tasks:
  probe:
    operator: shell
    env:
      TOKEN: "{{ secrets.token }}"
      STATE_FILE: ${JSON.stringify(stateFile)}
      CAIRN_HOME_DIR: ${JSON.stringify(home)}
      PG_PORT: "${pgPort}"
    params:
      script: |
        probe() { if "$@" > /dev/null 2>&1; then echo true; else echo false; fi; }
        environ=$(probe cat "/proc/$PPID/environ")
        state=$(probe cat "$STATE_FILE")
        home_listed=$(probe ls "$CAIRN_HOME_DIR")
        secret_file=$(probe cat "$CAIRN_HOME_DIR/secrets/from_file")
        url=$( (tr '\\0' '\\n' < "/proc/$PPID/environ" | sed -n 's/^DATABASE_URL=//p') 2> /dev/null || true)
        password=$(sed -n 's/.*"password": *"\\([^"]*\\)".*/\\1/p' "$STATE_FILE" 2> /dev/null || true)
        db_with_url=$(probe psql -X -w "\${url:-postgresql://postgres@127.0.0.1:$PG_PORT/postgres}" -Atc 'select 1')
        db_with_password=$(probe env PGPASSWORD="$password" psql -X -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1')
        env > env.txt
        printf '{"uid": %s, "environ": %s, "state": %s, "home_listed": %s, "secret_file": %s, "db_with_url": %s, "db_with_password": %s, "home": "%s"}' \\
          "$(id -u)" "$environ" "$state" "$home_listed" "$secret_file" "$db_with_url" "$db_with_password" "$HOME" > "$CAIRN_OUTPUTS"
`
  const workdirs = `dag: workdirs
params:
  w: { type: string, default: out }
tasks:
  run:
    operator: shell
    params:
      workdir: "{{ params.w }}"
      script: |
        printf '{"cwd": "%s"}' "$(pwd)" > "$CAIRN_OUTPUTS"
`
  engine.writeDag('probe.yaml', probe)
  engine.writeDag('workdirs.yaml', workdirs)
  await waitForDags(engine.db, ['probe', 'workdirs'])
  const worker = engine.spawnWorker({ slots: 4, env: { CAIRN_SECRET_TOKEN: TOKEN, CAIRN_SECRET_OTHER: OTHER } })
  const taskUid = Number(await waitFor('the task user', async () => {
    try {
      return execFileSync('id', ['-u', DEFAULT_TASK_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return undefined
    }
  }))

  const runTask = async (dagId: string, params: Record<string, unknown> = {}) => {
    const runId = await engine.trigger(dagId, params)
    const state = await engine.waitForRun(runId, RUN_TIMEOUT_MS)
    const row = [...(await taskRows(engine.db, runId)).values()][0]!
    return { runId, state, row }
  }

  test('a task runs as the unprivileged task user and reaches none of cairn\'s secrets or its database', async () => {
    const { runId, state, row } = await runTask('probe')
    assert.equal(state, 'success', JSON.stringify(row))
    const out = row.outputs as Record<string, unknown>

    // What the task tried is there to be had: the worker's initial environment still holds every
    // secret (deleting them from process.env does not change /proc/PID/environ), and the files exist.
    const environ = readFileSync(`/proc/${worker.pid}/environ`, 'utf8')
    assert.ok(environ.includes(`CAIRN_SECRET_OTHER=${OTHER}`) && environ.includes('DATABASE_URL='))
    if (server.embedded) assert.match(readFileSync(stateFile, 'utf8'), /"password"/)
    // ... and psql works with those credentials: the task's failures are about permissions, not a missing tool.
    assert.equal(execFileSync('psql', ['-X', '-w', engine.url, '-Atc', 'select 1'], { encoding: 'utf8' }).trim(), '1')
    assert.equal(readFileSync(join(home, 'secrets', 'from_file'), 'utf8'), `${FILE_SECRET}\n`)

    assert.notEqual(out.uid, 0)
    assert.equal(out.uid, taskUid)
    assert.deepEqual(
      { environ: out.environ, state: out.state, home_listed: out.home_listed, secret_file: out.secret_file, db_with_url: out.db_with_url, db_with_password: out.db_with_password },
      { environ: false, state: false, home_listed: false, secret_file: false, db_with_url: false, db_with_password: false },
    )

    // Its own secret arrives (through its env template); the one it does not name does not.
    const attemptDir = join(home, 'work', runId, 'probe', '1')
    assert.equal(out.home, attemptDir)
    const env = readFileSync(join(attemptDir, 'env.txt'), 'utf8')
    assert.ok(env.includes(`TOKEN=${TOKEN}\n`), 'the task gets the secret its template names')
    assert.ok(!env.includes(OTHER) && !env.includes(FILE_SECRET) && !env.includes('CAIRN_SECRET_') && !env.includes('DATABASE_URL'))
    assert.equal(statSync(attemptDir).uid, taskUid)
    assert.equal(statSync(attemptDir).mode & 0o777, 0o700)
    assert.equal(statSync(home).mode & 0o077 & ~0o011, 0, 'CAIRN_HOME: no read or write for others')
    assert.equal(statSync(join(home, 'secrets')).mode & 0o077, 0, 'the secrets dir inside CAIRN_HOME is private')
  })

  test('workdir: a relative folder inside the attempt\'s folder is created by the task user', async () => {
    const { runId, state, row } = await runTask('workdirs', { w: 'out/a' })
    assert.equal(state, 'success', JSON.stringify(row))
    const cwd = join(home, 'work', runId, 'run', '1', 'out', 'a')
    assert.deepEqual(row.outputs, { cwd, exit_code: 0 })
    assert.equal(statSync(cwd).uid, taskUid)
  })

  test('workdir: /proc/self, /proc/self/x/y and ../../x are refused after rendering, at once and without retry', async () => {
    const cases: [string, RegExp][] = [
      ['/proc/self', /workdir "\/proc\/self" is an absolute path/],
      ['/proc/self/x/y', /workdir "\/proc\/self\/x\/y" is an absolute path/],
      ['../../x', /workdir "\.\.\/\.\.\/x" leaves the attempt's folder/],
      ['a/../../b', /leaves the attempt's folder/],
    ]
    for (const [w, message] of cases) {
      const started = Date.now()
      const { state, row } = await runTask('workdirs', { w })
      assert.equal(state, 'failed', w)
      assert.equal(row.failure_kind, 'invalid_params', w)
      assert.match(row.message ?? '', message)
      assert.equal(row.attempt, 1, `${w}: not retried`)
      assert.ok(Date.now() - started < 20_000, `${w}: took ${Date.now() - started} ms`)
    }
    // The worker is not stuck: the next task runs.
    const { state } = await runTask('workdirs', { w: 'fine' })
    assert.equal(state, 'success')
  })
}
