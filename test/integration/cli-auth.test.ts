/**
 * `cairn users create|list` and `cairn tokens create` as their own CLI processes against a real
 * database, then the users and tokens they made used against the web API.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { FastifyInstance } from 'fastify'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import { runCommand } from '../helpers/engine-extra.ts'
import type { CommandResult } from '../helpers/engine-extra.ts'

const MAIN = new URL('../../engine/cli/main.ts', import.meta.url).pathname

let url: string
let db: Db
let app: FastifyInstance
let base: string

// Hooks registered inside before() would run when it ends; the file's teardown runs after every test.
const teardown: (() => Promise<void>)[] = []
before(async () => {
  url = await createTestDatabase({ after: (fn) => void teardown.push(fn) })
  const log = testLogger()
  db = createDb(url, { log, max: 3 })
  await migrate(db, log)
  ;({ app, base } = await startTestWeb({ db, log }))
})
after(async () => {
  await app.close()
  await db.close()
  for (const step of teardown.reverse()) await step()
})

function cairn(args: string[], stdin = ''): Promise<CommandResult> {
  return runCommand(process.execPath, [MAIN, ...args], { env: { ...process.env, DATABASE_URL: url, CAIRN_LOG_LEVEL: 'warn' }, stdin })
}

test('users create reads the password from stdin; the user can log in with the role given, and only with that password', async () => {
  const created = await cairn(['users', 'create', 'alice', '--role', 'operator'], 'long enough password\n')
  assert.equal(created.code, 0, created.stderr)
  assert.match(created.stdout, /created user alice \(role operator\)/)
  assert.ok(!created.stdout.includes('long enough password') && !created.stderr.includes('long enough password'), 'the password is never echoed')

  const login = await rawRequest(base, 'POST', '/api/v1/login', { body: { username: 'alice', password: 'long enough password' } })
  assert.equal(login.status, 200, login.body)
  const session = await rawRequest(base, 'GET', '/api/v1/session', { headers: { cookie: String([login.headers['set-cookie']].flat()[0]).split(';')[0]! } })
  assert.equal(session.json().role, 'operator')
  assert.equal((await rawRequest(base, 'POST', '/api/v1/login', { body: { username: 'alice', password: 'long enough password\n' } })).status, 401, 'one trailing newline is not part of the password; the password is exact')

  const { rows } = await db.query<{ password_hash: string }>(`SELECT password_hash FROM cairn.web_user WHERE username = 'alice'`)
  assert.match(rows[0]!.password_hash, /^\$argon2id\$/)

  const again = await cairn(['users', 'create', 'alice', '--role', 'viewer'], 'another password\n')
  assert.equal(again.code, 1)
  assert.match(again.stderr, /already exists/)

  // Typed twice, as a prompt asks for it: the second line is the confirmation, not part of the password.
  const twice = await cairn(['users', 'create', 'erin', '--role', 'viewer'], 'erin typed this twice\nerin typed this twice\n')
  assert.equal(twice.code, 0, twice.stderr)
  assert.equal((await rawRequest(base, 'POST', '/api/v1/login', { body: { username: 'erin', password: 'erin typed this twice' } })).status, 200)
  const differ = await cairn(['users', 'create', 'dave', '--role', 'viewer'], 'dave typed this once\nand then something else\n')
  assert.equal(differ.code, 2, differ.stderr)
  assert.match(differ.stderr, /one line/)

  const list = await cairn(['users', 'list', '--format', 'json'])
  assert.equal(list.code, 0, list.stderr)
  const users = JSON.parse(list.stdout)
  assert.deepEqual(users.map((u: { username: string; role: string }) => [u.username, u.role]), [['alice', 'operator'], ['erin', 'viewer']])
})

test('users create refuses bad roles, names and passwords with exit code 2', async () => {
  const cases: [string[], string, RegExp][] = [
    [['users', 'create', 'bob', '--role', 'root'], 'long enough password', /--role/],
    [['users', 'create', 'bob'], 'long enough password', /--role is required/],
    [['users', 'create', 'bad name;rm', '--role', 'viewer'], 'long enough password', /may only use/],
    [['users', 'create', 'bob', '--role', 'viewer'], 'short', /password/i],
    [['users', 'create', 'bob', '--role', 'viewer'], '', /no password/],
  ]
  for (const [args, stdin, message] of cases) {
    const r = await cairn(args, stdin)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, message)
  }
  const { rows } = await db.query(`SELECT 1 FROM cairn.web_user WHERE username = 'bob'`)
  assert.equal(rows.length, 0)
})

test('tokens create prints the token alone on the last line; it works at once with its role and is stored only as a digest', async () => {
  const operator = await cairn(['tokens', 'create', 'deploy-bot', '--role', 'operator'])
  assert.equal(operator.code, 0, operator.stderr)
  const token = operator.stdout.trim().split('\n').at(-1)!
  assert.ok(token.length >= 32, token)
  const viewer = (await cairn(['tokens', 'create', 'dashboard', '--role', 'viewer'])).stdout.trim().split('\n').at(-1)!

  const pause = (t: string) => rawRequest(base, 'POST', '/api/v1/dags/nope/pause', { headers: { authorization: `Bearer ${t}` } })
  assert.equal((await pause(token)).status, 404, 'an operator may pause (there is no such DAG)')
  assert.equal((await pause(viewer)).status, 403)
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${viewer}` } })).status, 200)
  assert.equal((await rawRequest(base, 'GET', '/api/v1/users', { headers: { authorization: `Bearer ${token}` } })).status, 403, 'only admins manage users')

  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM cairn.api_token WHERE strpos(encode(token_hash, 'escape'), $1) > 0 OR strpos(encode(token_hash, 'hex'), $1) > 0`, [token])
  assert.equal(rows[0]!.n, '0')
  const duplicate = await cairn(['tokens', 'create', 'deploy-bot', '--role', 'viewer'])
  assert.equal(duplicate.code, 1)
  assert.equal((await cairn(['tokens', 'create', 'x', '--role', 'superuser'])).code, 2)
})

test('users create refuses common and guessable passwords, saying why, not only short ones', async () => {
  for (const [password, why] of [['password', /too common/], ['Password1!', /too common/], ['carol12345', /too guessable/]] as const) {
    const r = await cairn(['users', 'create', 'carol', '--role', 'viewer'], `${password}\n`)
    assert.equal(r.code, 2, `${password}: ${r.stderr}`)
    assert.match(r.stderr, why, password)
    if (password !== 'password') assert.ok(!r.stderr.includes(password), 'the password is not echoed')
  }
  assert.equal((await db.query(`SELECT 1 FROM cairn.web_user WHERE username = 'carol'`)).rows.length, 0)
})

test('tokens list shows name, role, state, created, expires and last use but never the token; revoke is 401 at once', async () => {
  const created = await cairn(['tokens', 'create', 'nightly', '--role', 'viewer', '--expires', '90d'])
  assert.equal(created.code, 0, created.stderr)
  assert.match(created.stderr, /expires \d{4}-/)
  const token = created.stdout.trim().split('\n').at(-1)!
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${token}` } })).status, 200)

  const json = await cairn(['tokens', 'list', '--format', 'json'])
  assert.equal(json.code, 0, json.stderr)
  assert.ok(!json.stdout.includes(token) && !json.stdout.includes(token.slice(6, 30)), 'never the token')
  const listed = JSON.parse(json.stdout).find((t: { name: string }) => t.name === 'nightly')
  assert.equal(listed.role, 'viewer')
  assert.equal(listed.state, 'active')
  const days = (Date.parse(listed.expires_at) - Date.parse(listed.created_at)) / 86_400_000
  assert.ok(Math.abs(days - 90) < 0.01, `expires after ${days} days`)
  assert.ok(Date.now() - Date.parse(listed.last_used_at) < 60_000, 'its use was recorded')
  const text = await cairn(['tokens', 'list'])
  assert.match(text.stdout, /^TOKEN\s+ROLE\s+STATE\s+CREATED\s+EXPIRES\s+LAST USED/m)
  assert.match(text.stdout, /^nightly\s+viewer\s+active\s/m)
  assert.ok(!text.stdout.includes(token))

  const revoked = await cairn(['tokens', 'revoke', 'nightly'])
  assert.equal(revoked.code, 0, revoked.stderr)
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${token}` } })).status, 401, 'refused at once')
  assert.ok(!JSON.parse((await cairn(['tokens', 'list', '--format', 'json'])).stdout).some((t: { name: string }) => t.name === 'nightly'))
  const all = JSON.parse((await cairn(['tokens', 'list', '--all', '--format', 'json'])).stdout)
  assert.equal(all.find((t: { name: string }) => t.name === 'nightly').state, 'revoked')
  assert.equal((await cairn(['tokens', 'revoke', 'nightly'])).code, 1, 'nothing left to revoke')
  for (const bad of ['soon', '0d', '90']) assert.equal((await cairn(['tokens', 'create', 'x', '--role', 'viewer', '--expires', bad])).code, 2, bad)
})

test('a token created with --expires gets 401 once it has expired', async () => {
  const created = await cairn(['tokens', 'create', 'brief', '--role', 'viewer', '--expires', '2s'])
  assert.equal(created.code, 0, created.stderr)
  const token = created.stdout.trim().split('\n').at(-1)!
  const get = () => rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${token}` } })
  assert.equal((await get()).status, 200)
  const deadline = Date.now() + 15_000
  while ((await get()).status !== 401) {
    assert.ok(Date.now() < deadline, 'the token still works 15 s after it should have expired')
    await new Promise((r) => setTimeout(r, 200))
  }
  const listed = JSON.parse((await cairn(['tokens', 'list', '--format', 'json'])).stdout).find((t: { name: string }) => t.name === 'brief')
  assert.equal(listed.state, 'expired')
})

test("users disable: the user's session and tokens get 401 at once and the user cannot log in; enable lets them back", async () => {
  assert.equal((await cairn(['users', 'create', 'dora', '--role', 'viewer'], 'quiet lantern orbit\n')).code, 0)
  const login = () => rawRequest(base, 'POST', '/api/v1/login', { body: { username: 'dora', password: 'quiet lantern orbit' } })
  const first = await login()
  assert.equal(first.status, 200, first.body)
  const cookie = String([first.headers['set-cookie']].flat()[0]).split(';')[0]!
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { cookie } })).status, 200)

  const disabled = await cairn(['users', 'disable', 'dora'])
  assert.equal(disabled.code, 0, disabled.stderr)
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { cookie } })).status, 401)
  assert.equal((await login()).status, 401)
  assert.equal(JSON.parse((await cairn(['users', 'list', '--format', 'json'])).stdout).find((u: { username: string }) => u.username === 'dora').disabled, true)

  const owned = await cairn(['tokens', 'create', 'doras-script', '--role', 'viewer', '--owner', 'dora'])
  assert.equal(owned.code, 0, owned.stderr)
  const ownedToken = owned.stdout.trim().split('\n').at(-1)!
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${ownedToken}` } })).status, 401, "a disabled user's token")
  assert.equal((await cairn(['tokens', 'create', 'orphan', '--role', 'viewer', '--owner', 'nobody'])).code, 1)

  assert.equal((await cairn(['users', 'enable', 'dora'])).code, 0)
  assert.equal((await login()).status, 200)
  assert.equal((await rawRequest(base, 'GET', '/api/v1/dags', { headers: { authorization: `Bearer ${ownedToken}` } })).status, 200, 'works again once enabled')
  assert.equal((await cairn(['users', 'disable', 'nobody'])).code, 1)
})

test('without a reachable database the commands exit 2 with a clear message', async () => {
  const child = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'tokens', 'create', 'x', '--role', 'viewer'], { env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', CAIRN_LOG_LEVEL: 'warn' } })
    let stderr = ''
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    p.on('close', (code) => resolve({ code, stderr }))
  })
  assert.equal(child.code, 2)
  assert.match(child.stderr, /connect|reach/i)
})
