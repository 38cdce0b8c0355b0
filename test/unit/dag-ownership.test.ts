import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decideOwnership } from '../../engine/scheduler/dag-ownership.ts'
import type { FileClaim, StoredDag } from '../../engine/scheduler/dag-ownership.ts'

const dag = (file: string, id: string | undefined, mtimeMs = 0, ok = true): FileClaim => ({ file, kind: 'dag', id, ok, mtimeMs })
const stored = (entries: Record<string, string | null>): Map<string, StoredDag> => new Map(Object.entries(entries).map(([id, file]) => [id, { file, removed: false }]))

test('the stored owner keeps its DAG against an older duplicate', () => {
  const result = decideOwnership([dag('b.yaml', 'x', 5), dag('a.yaml', 'x', 1)], stored({ x: 'b.yaml' }))
  assert.deepEqual([...result.owners], [['x', 'b.yaml']])
  assert.deepEqual([...result.duplicates], [['a.yaml', { dagId: 'x', owner: 'b.yaml' }]])
})

test('a broken or unreadable owner keeps its DAG; a valid owner that moved to a free id lets it go', () => {
  assert.equal(decideOwnership([dag('a.yaml', 'x', 0, false), dag('b.yaml', 'x')], stored({ x: 'a.yaml' })).owners.get('x'), 'a.yaml')
  assert.equal(decideOwnership([dag('a.yaml', undefined, 0, false), dag('b.yaml', 'x')], stored({ x: 'a.yaml' })).owners.get('x'), 'a.yaml')
  const moved = decideOwnership([dag('a.yaml', 'y'), dag('b.yaml', 'x')], stored({ x: 'a.yaml' }))
  assert.deepEqual([...moved.owners].sort(), [['x', 'b.yaml'], ['y', 'a.yaml']])
  assert.equal(moved.duplicates.size, 0)
})

test('a file that moves to an id another file holds keeps its own DAG and is a duplicate of the other', () => {
  const result = decideOwnership([dag('a.yaml', 'y'), dag('b.yaml', 'y')], stored({ x: 'a.yaml', y: 'b.yaml' }))
  assert.deepEqual([...result.owners].sort(), [['x', 'a.yaml'], ['y', 'b.yaml']])
  assert.deepEqual([...result.duplicates], [['a.yaml', { dagId: 'y', owner: 'b.yaml' }]])
})

test('two files swapping their ids swap their DAGs', () => {
  const result = decideOwnership([dag('a.yaml', 'y'), dag('b.yaml', 'x')], stored({ x: 'a.yaml', y: 'b.yaml' }))
  assert.deepEqual([...result.owners].sort(), [['x', 'b.yaml'], ['y', 'a.yaml']])
  assert.equal(result.duplicates.size, 0)
})

test('a DAG nobody holds goes to the oldest file, then the first path; deleted owners hold nothing', () => {
  const result = decideOwnership([dag('c.yaml', 'x', 1), dag('b.yaml', 'x', 1), dag('a.yaml', 'x', 9)], stored({ x: 'gone.yaml' }))
  assert.equal(result.owners.get('x'), 'b.yaml')
  assert.deepEqual([...result.duplicates.keys()].sort(), ['a.yaml', 'c.yaml'])
})
