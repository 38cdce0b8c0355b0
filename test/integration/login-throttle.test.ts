/**
 * The login limits of docs/web.md against a real web server and database, each client on its own
 * loopback address: a stranger's failures slow only the stranger's address, a back-off ends by
 * itself, and failures spread over many addresses slow only addresses the user never logged in from.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { waitFor } from '../helpers/engine-extra.ts'
import { rawRequest, startTestWeb } from '../helpers/web-client.ts'
import type { Response } from '../helpers/web-client.ts'

const PASSWORD = 'correct horse battery'
const BACKOFF_MS = 1500
const MAX_BACKOFF_MS = 3000

let db: Db
let app: FastifyInstance
let base: string
const teardown: (() => Promise<void>)[] = []

before(async () => {
  const url = await createTestDatabase({ after: (fn) => void teardown.push(fn) })
  const log = testLogger()
  db = createDb(url, { log, max: 5 })
  await migrate(db, log)
  for (const username of ['root', 'vic', 'ops']) await createUser(db, { username, role: 'admin', password: PASSWORD })
  ;({ app, base } = await startTestWeb({ db, log, login: { perIp: 1000, perUser: 3, perUserAnywhere: 6, backoffMs: BACKOFF_MS, maxBackoffMs: MAX_BACKOFF_MS } }))
})
after(async () => {
  await app.close()
  await db.close()
  for (const step of teardown.reverse()) await step()
})

function login(from: string, username: string, password: string): Promise<Response> {
  return rawRequest(base, 'POST', '/api/v1/login', { body: { username, password }, localAddress: from })
}

test("a stranger's failures slow only the stranger's address, and its back-off ends by itself", async () => {
  const stranger = '127.0.0.2'
  let lastFailure = 0
  for (let i = 1; i <= 3; i++) {
    // The failure is counted when the request arrives (before the password is checked): time it from the sending.
    lastFailure = Date.now()
    assert.equal((await login(stranger, 'root', `wrong guess ${i}`)).status, 401)
  }
  const refused = await login(stranger, 'ROOT', PASSWORD)
  assert.equal(refused.status, 429, 'from that address even the right password waits (whatever the case of the name)')
  const retryAfter = Number(refused.headers['retry-after'])
  assert.ok(retryAfter >= 1 && retryAfter <= Math.ceil(BACKOFF_MS / 1000), `Retry-After ${retryAfter}`)
  assert.match(refused.json().message, /try again in \d+ s/)

  assert.equal((await login('127.0.0.3', 'root', PASSWORD)).status, 200, 'the user from another address is not blocked')

  // Attempts during the back-off are refused unchecked and do not lengthen it.
  for (let i = 0; i < 5; i++) assert.equal((await login(stranger, 'root', 'still guessing')).status, 429)
  const ok = await waitFor('the back-off to end', async () => ((await login(stranger, 'root', PASSWORD)).status === 200 ? Date.now() : undefined), 20_000, 100)
  assert.ok(ok - lastFailure >= BACKOFF_MS - 100, `allowed again after ${ok - lastFailure} ms`)

  // A success from that address cleared its failures: it has its free attempts again.
  for (let i = 1; i <= 3; i++) assert.equal((await login(stranger, 'root', `another guess ${i}`)).status, 401, `attempt ${i}`)
})

test('the back-off doubles with each failure and is capped', async () => {
  const from = '127.0.0.20'
  for (let i = 1; i <= 3; i++) assert.equal((await login(from, 'ops', `wrong ${i}`)).status, 401)
  const waits: number[] = []
  for (let round = 0; round < 3; round++) {
    const refused = await login(from, 'ops', 'wrong again')
    assert.equal(refused.status, 429)
    waits.push(Number(refused.headers['retry-after']))
    await waitFor('the back-off to end', async () => {
      const r = await login(from, 'ops', 'wrong again')
      return r.status === 401 ? true : undefined
    }, 20_000, 100)
  }
  // 1.5 s, then 3 s, then still 3 s (the cap), less the time the requests took, rounded up.
  assert.ok(waits[0]! <= 2 && waits[1]! >= 2 && waits[1]! <= 3 && waits[2]! >= 2 && waits[2]! <= 3, `Retry-After ${waits.join(', ')}`)
})

test('failures from many addresses slow only addresses the user never logged in from, for a bounded time', async () => {
  const home = '127.0.0.3'
  assert.equal((await login(home, 'vic', PASSWORD)).status, 200)
  for (let i = 4; i <= 9; i++) assert.equal((await login(`127.0.0.${i}`, 'vic', 'distributed guess')).status, 401)
  const fresh = '127.0.0.10'
  assert.equal((await login(fresh, 'vic', PASSWORD)).status, 429, 'an address vic never used waits')
  assert.equal((await login(home, 'vic', PASSWORD)).status, 200, 'the address vic logs in from is not slowed by others')
  await waitFor('the new address to be let in', async () => ((await login(fresh, 'vic', PASSWORD)).status === 200 ? true : undefined), 20_000, 100)
})
