import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDb, isConnectionError, withReconnect } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { startEmbeddedPostgres } from '../../engine/store/embedded.ts'
import type { EmbeddedPostgres } from '../../engine/store/embedded.ts'
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../engine/store/migrate.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'
import { cleanupStack, waitFor } from '../helpers/engine-extra.ts'

const log = testLogger()

const stacks = new WeakMap<TestContext, (step: () => Promise<unknown> | unknown) => void>()

/**
 * Registers a cleanup step of test `t`. Steps run in reverse order (clients, then the servers they
 * use, then the folders those servers write to), and one that fails does not stop the rest.
 */
function defer(t: TestContext, step: () => Promise<unknown> | unknown): void {
  let push = stacks.get(t)
  if (!push) stacks.set(t, (push = cleanupStack(t)))
  push(step)
}

function openDb(t: TestContext, url: string, max?: number): Db {
  const db = createDb(url, { log, max })
  defer(t, () => db.close())
  return db
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-store-test-'))
  // As root the server runs as user postgres, which must be able to enter the dir.
  await chmod(dir, 0o755)
  defer(t, () => rm(dir, { recursive: true, force: true }))
  return dir
}

async function startServer(t: TestContext, dataDir: string, port?: number): Promise<EmbeddedPostgres> {
  const server = await startEmbeddedPostgres({ dataDir, port, log, ephemeral: true })
  defer(t, () => server.stop())
  return server
}

/** Running (not a zombie waiting to be reaped by whoever inherited it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
}

describe('migrate', () => {
  test('applies every migration once, in order', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    const expected = (await loadMigrations()).map((m) => m.name)
    assert.equal(expected[0], '0001_init.sql')

    assert.deepEqual(await migrate(db, log), { applied: expected })
    assert.deepEqual(await migrate(db, log), { applied: [] })

    const { rows } = await db.query<{ version: number; name: string }>('SELECT version, name FROM cairn.migration ORDER BY version')
    assert.deepEqual(rows.map((r) => r.name), expected)
    const meta = await db.query<{ t: string | null }>(`SELECT to_regclass('cairn.meta')::text AS t`)
    assert.equal(meta.rows[0]?.t, 'cairn.meta')
  })

  test('two concurrent migrate() calls on a fresh database both succeed and record each migration once', async (t) => {
    const url = await createTestDatabase(t)
    // Two pools stand for two processes starting at the same moment.
    const [a, b] = [openDb(t, url), openDb(t, url)]
    const expected = (await loadMigrations()).map((m) => m.name)

    const [ra, rb] = await Promise.all([migrate(a, log), migrate(b, log)])

    assert.deepEqual([...ra.applied, ...rb.applied].sort(), expected)
    const { rows } = await a.query<{ version: number; n: string }>('SELECT version, count(*) AS n FROM cairn.migration GROUP BY version ORDER BY version')
    assert.equal(rows.length, expected.length)
    assert.ok(rows.every((r) => r.n === '1'))
  })

  test('a failing migration is rolled back whole and stops the ones after it', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    const dir = await tempDir(t)
    await copyFile(join(MIGRATIONS_DIR, '0001_init.sql'), join(dir, '0001_init.sql'))
    await writeFile(join(dir, '0002_ok.sql'), 'CREATE TABLE cairn.ok (id int);')
    await writeFile(join(dir, '0003_bad.sql'), 'CREATE TABLE cairn.half (id int);\nSELECT 1/0;')
    await writeFile(join(dir, '0004_later.sql'), 'CREATE TABLE cairn.later (id int);')

    await assert.rejects(migrate(db, log, { dir }), /migration 0003_bad\.sql failed: division by zero/)
    const recorded = await db.query<{ name: string }>('SELECT name FROM cairn.migration ORDER BY version')
    assert.deepEqual(recorded.rows.map((r) => r.name), ['0001_init.sql', '0002_ok.sql'])
    const tables = await db.query<{ half: string | null; later: string | null }>(`SELECT to_regclass('cairn.half')::text AS half, to_regclass('cairn.later')::text AS later`)
    assert.deepEqual(tables.rows[0], { half: null, later: null })

    await writeFile(join(dir, '0003_bad.sql'), 'CREATE TABLE cairn.half (id int);')
    assert.deepEqual(await migrate(db, log, { dir }), { applied: ['0003_bad.sql', '0004_later.sql'] })
  })

  test('refuses a database migrated by a newer cairn', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    await migrate(db, log)
    await db.query(`INSERT INTO cairn.migration (version, name) VALUES (9999, '9999_future.sql')`)
    await assert.rejects(migrate(db, log), /migration 9999 \(9999_future\.sql\) that this version of cairn does not know/)
  })
})

describe('tx', () => {
  test('commits when fn resolves and rolls back everything when it throws', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    await db.query('CREATE TABLE item (id int PRIMARY KEY)')

    const value = await db.tx(async (q) => {
      await q.query('INSERT INTO item VALUES (1)')
      return 'done'
    })
    assert.equal(value, 'done')

    const boom = new Error('boom')
    await assert.rejects(
      db.tx(async (q) => {
        await q.query('INSERT INTO item VALUES (2)')
        await q.query('INSERT INTO item VALUES (3)')
        throw boom
      }),
      (error) => error === boom,
    )
    await assert.rejects(db.tx((q) => q.query('INSERT INTO item VALUES (1)')), { code: '23505' })

    const { rows } = await db.query<{ id: number }>('SELECT id FROM item ORDER BY id')
    assert.deepEqual(rows, [{ id: 1 }])
    // The pool got its connections back in a usable state.
    assert.equal(db.pool.totalCount - db.pool.idleCount, 0)
  })

  test('runs a transaction again after a serialization failure', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    await db.query('CREATE TABLE counter (n int)')
    await db.query('INSERT INTO counter VALUES (0)')
    const attempts = { a: 0, b: 0 }
    // Both read before either writes on their first attempt: one of the two must fail with 40001.
    let arrived = 0
    let release!: () => void
    const bothRead = new Promise<void>((done) => (release = done))
    const increment = (who: 'a' | 'b') =>
      db.tx(
        async (q) => {
          attempts[who]++
          const { rows } = await q.query<{ n: number }>('SELECT n FROM counter')
          if (attempts[who] === 1) {
            if (++arrived === 2) release()
            await bothRead
          }
          await q.query('UPDATE counter SET n = $1', [(rows[0]?.n ?? 0) + 1])
        },
        { isolation: 'serializable' },
      )

    await Promise.all([increment('a'), increment('b')])

    const { rows } = await db.query<{ n: number }>('SELECT n FROM counter')
    assert.equal(rows[0]?.n, 2)
    assert.equal(attempts.a + attempts.b, 3)
  })

  test('gives up after maxAttempts and rethrows the conflict', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    let runs = 0
    await assert.rejects(
      db.tx(
        async () => {
          runs++
          throw Object.assign(new Error('could not serialize access'), { code: '40001' })
        },
        { maxAttempts: 3 },
      ),
      { code: '40001' },
    )
    assert.equal(runs, 3)
  })
})

describe('withReconnect', () => {
  test('rethrows other errors at once and connection errors after maxWaitMs', async (t) => {
    const db = openDb(t, await createTestDatabase(t))
    let calls = 0
    await assert.rejects(
      withReconnect(() => (calls++, db.query('SELEC 1')), { log }),
      { code: '42601' },
    )
    assert.equal(calls, 1)

    const port = await new Promise<number>((done) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address()
        server.close(() => done(typeof address === 'object' && address ? address.port : 0))
      })
    })
    const nowhere = openDb(t, `postgres://nobody:x@127.0.0.1:${port}/nothing`)
    const started = Date.now()
    calls = 0
    await assert.rejects(
      withReconnect(() => (calls++, nowhere.query('SELECT 1')), { log, maxWaitMs: 400 }),
      (error) => isConnectionError(error),
    )
    assert.ok(Date.now() - started >= 400)
    assert.ok(calls >= 2, `expected retries, got ${calls} call(s)`)
  })
})

describe('embedded Postgres', () => {
  test('survives a restart: a waiting withReconnect query completes and listen re-listens', async (t) => {
    const dataDir = join(await tempDir(t), 'pg')
    const first = await startServer(t, dataDir)
    const db = openDb(t, first.url, 4)
    await migrate(db, log)
    await db.query(`INSERT INTO cairn.meta VALUES ('kept', 'yes')`)

    const received: string[] = []
    let reconnected!: () => void
    const relistened = new Promise<void>((done) => (reconnected = done))
    const unlisten = await db.listen('cairn_test', (payload) => received.push(payload), { onReconnect: () => reconnected() })
    defer(t, unlisten)
    await db.query(`SELECT pg_notify('cairn_test', 'before')`)
    await waitFor('the notification', () => received.length === 1, 5000, 10)

    await first.stop()
    assert.deepEqual(await first.exited, { code: 0, signal: null })
    let settled = false
    const waiting = withReconnect(() => db.query<{ value: string }>(`SELECT value FROM cairn.meta WHERE key = 'kept'`), { log, maxWaitMs: 30_000 }).finally(() => (settled = true))
    await sleep(500)
    assert.equal(settled, false, 'the query must wait for the server')

    const second = await startServer(t, dataDir, first.port)
    assert.equal(second.port, first.port)
    const { rows } = await waiting
    assert.deepEqual(rows, [{ value: 'yes' }])

    await relistened
    await db.query(`SELECT pg_notify('cairn_test', 'after')`)
    await waitFor('the notification after the restart', () => received.length === 2, 5000, 10)
    assert.deepEqual(received, ['before', 'after'])
  })

  test('a second start reuses the data dir, credentials and recorded port, ignoring a stale postmaster.pid', async (t) => {
    const dataDir = join(await tempDir(t), 'pg')
    const first = await startServer(t, dataDir)
    const db = openDb(t, first.url)
    await db.query('CREATE TABLE survivor (id int)')
    await db.close()
    await first.stop()

    // A stale pid file whose pid now belongs to an unrelated live process (as after a container restart).
    const unrelated = spawn('sleep', ['30'], { stdio: 'ignore' })
    defer(t, () => unrelated.kill())
    await writeFile(join(dataDir, 'postmaster.pid'), `${unrelated.pid}\n${dataDir}\n1\n${first.port}\n\n127.0.0.1\n  1  1\nready   \n`)

    const second = await startServer(t, dataDir)
    assert.equal(second.port, first.port)
    assert.equal(second.url, first.url)
    const client = new pg.Client(second.url)
    client.on('error', () => {})
    await client.connect()
    defer(t, () => client.end())
    const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass('survivor')::text AS t`)
    assert.equal(rows[0]?.t, 'survivor')
  })

  test('refuses a data dir whose server a live process owns, and takes over when that process is killed', async (t) => {
    const dataDir = join(await tempDir(t), 'pg')
    const embeddedModule = pathToFileURL(join(import.meta.dirname, '../../engine/store/embedded.ts')).href
    const script = `
      import { pino } from 'pino'
      import pg from 'pg'
      const { startEmbeddedPostgres } = await import(${JSON.stringify(embeddedModule)})
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, log: pino({ level: 'silent' }), ephemeral: true })
      const client = new pg.Client(server.url)
      await client.connect()
      await client.query('CREATE TABLE from_child (id int)')
      await client.end()
      console.log(JSON.stringify({ pid: server.pid, url: server.url }))
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '../..'), stdio: ['ignore', 'pipe', 'inherit'] })
    defer(t, () => child.kill('SIGKILL'))
    const [line] = (await Promise.race([
      once(createInterface({ input: child.stdout }), 'line'),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`child exited (${code}) before starting Postgres`))),
    ])) as [string]
    const orphan = JSON.parse(line) as { pid: number; url: string }

    await assert.rejects(startEmbeddedPostgres({ dataDir, log, ephemeral: true }), new RegExp(`already running \\(pid ${orphan.pid}\\), owned by process ${child.pid}`))

    child.kill('SIGKILL')
    await once(child, 'exit')
    assert.ok(isAlive(orphan.pid), 'the server outlives its killed owner')

    const server = await startServer(t, dataDir)
    assert.equal(isAlive(orphan.pid), false)
    assert.equal(server.url, orphan.url)
    const client = new pg.Client(server.url)
    client.on('error', () => {})
    await client.connect()
    defer(t, () => client.end())
    const { rows } = await client.query<{ t: string | null }>(`SELECT to_regclass('from_child')::text AS t`)
    assert.equal(rows[0]?.t, 'from_child')
  })
})
