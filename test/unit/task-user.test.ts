import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { resolveTaskUser } from '../../engine/process/task-user.ts'
import type { TaskUserHost } from '../../engine/process/task-user.ts'

const log = pino({ level: 'silent' })

function host(uid: number, users: Record<string, number>): TaskUserHost & { created: string[] } {
  const created: string[] = []
  return {
    uid,
    created,
    async lookup(name) {
      const id = users[name]
      return id === undefined ? undefined : { uid: id, gid: id + 1 }
    },
    async create(name) {
      created.push(name)
      users[name] = 990
    },
  }
}

test('as root: tasks run as cairn-task by default, created when missing', async () => {
  const h = host(0, { root: 0 })
  assert.deepEqual(await resolveTaskUser(undefined, log, h), { name: 'cairn-task', uid: 990, gid: 991 })
  assert.deepEqual(h.created, ['cairn-task'])
  const existing = host(0, { 'cairn-task': 500 })
  assert.deepEqual(await resolveTaskUser(undefined, log, existing), { name: 'cairn-task', uid: 500, gid: 501 })
  assert.deepEqual(existing.created, [])
})

test('as root: run_as names a user; a missing one is an error (only cairn-task is created), root is refused', async () => {
  assert.deepEqual(await resolveTaskUser('etl', log, host(0, { etl: 1200 })), { name: 'etl', uid: 1200, gid: 1201 })
  await assert.rejects(resolveTaskUser('nobody_here', log, host(0, {})), /the OS user "nobody_here" does not exist/)
  await assert.rejects(resolveTaskUser('root', log, host(0, { root: 0 })), /tasks never run as root/)
  await assert.rejects(resolveTaskUser('toor', log, host(0, { toor: 0 })), /is root \(uid 0\)/)
})

test('as an ordinary user: tasks run as that user unless run_as names another, which needs root', async () => {
  assert.equal(await resolveTaskUser(undefined, log, host(1000, {})), undefined)
  assert.equal(await resolveTaskUser('me', log, host(1000, { me: 1000 })), undefined)
  await assert.rejects(resolveTaskUser('cairn-task', log, host(1000, { 'cairn-task': 990 })), /needs cairn to run as root/)
})

test('a creation that fails because another worker created the user at the same moment is fine', async () => {
  const users: Record<string, number> = {}
  const racing: TaskUserHost = {
    uid: 0,
    async lookup(name) {
      return users[name] === undefined ? undefined : { uid: users[name]!, gid: users[name]! }
    },
    async create(name) {
      users[name] = 991
      throw new Error(`useradd: user '${name}' already exists`)
    },
  }
  assert.deepEqual(await resolveTaskUser(undefined, log, racing), { name: 'cairn-task', uid: 991, gid: 991 })
})
