import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lineage, MAX_LINEAGE_NODES } from '../../engine/web/dataset-lineage.ts'
import type { DatasetInput, DatasetVersionRow } from '../../engine/store/datasets.ts'

function version(dataset: string, v: number, inputs: DatasetInput[], details: Record<string, unknown> = {}): DatasetVersionRow {
  return {
    dataset, version: v, location: `${dataset}/${v}`, columns: [], rows: 1, bytes: 1, fingerprint: 'f', producedKind: 'ingest',
    runId: null, taskId: null, runPruned: false, attempt: null, actor: null, inputs, expectations: null, badRows: null, details, createdAt: new Date('2026-01-01T00:00:00Z'),
  }
}

function store(rows: DatasetVersionRow[]) {
  const byKey = new Map(rows.map((r) => [`${r.dataset}@${r.version}`, r]))
  let reads = 0
  return { read: async (n: string, v: number) => (reads++, byKey.get(`${n}@${v}`)), reads: () => reads }
}

test('a diamond visits each version once; a cycle (which publishing cannot make) still ends', async () => {
  const rows = [
    version('raw', 1, [], { source: { kind: 'http', url: 'https://example.test/x.csv' } }),
    version('left', 1, [{ dataset: 'raw', version: 1 }]),
    version('right', 1, [{ dataset: 'raw', version: 1 }, { dataset: 'raw', version: 1 }]),
    version('top', 1, [{ dataset: 'left', version: 1 }, { dataset: 'right', version: 1 }]),
  ]
  const s = store(rows)
  const graph = await lineage(rows[3]!, s.read)
  assert.deepEqual(graph.nodes.map((n) => n.id).sort(), ['dataset:left@1', 'dataset:raw@1', 'dataset:right@1', 'dataset:top@1', 'source:raw@1'])
  assert.equal(graph.edges.length, 5, JSON.stringify(graph.edges))
  assert.equal(s.reads(), 3)
  assert.equal(graph.nodes.find((n) => n.kind === 'source')!.name, 'http https://example.test/x.csv')

  const a = version('a', 1, [{ dataset: 'b', version: 1 }])
  const b = version('b', 1, [{ dataset: 'a', version: 1 }])
  const cyclic = await lineage(a, store([a, b]).read)
  assert.deepEqual(cyclic.nodes.map((n) => n.id).sort(), ['dataset:a@1', 'dataset:b@1'])
})

test(`a long chain stops at ${MAX_LINEAGE_NODES} nodes and says so; malformed inputs are skipped`, async () => {
  const rows = Array.from({ length: 300 }, (_, i) => version('chain', i + 1, i === 0 ? [] : [{ dataset: 'chain', version: i }]))
  const graph = await lineage(rows[299]!, store(rows).read)
  assert.equal(graph.nodes.length, MAX_LINEAGE_NODES)
  assert.equal(graph.truncated, true)
  assert.ok(graph.edges.every((e) => graph.nodes.some((n) => n.id === e.from) && graph.nodes.some((n) => n.id === e.to)), 'no edge to a node left out')

  const odd = version('odd', 1, [null, 'x', { dataset: 'ok' }, { feature_view: 'fv', definition_version: 2 }] as unknown as DatasetInput[])
  const small = await lineage(odd, store([]).read, async () => [{ dataset: 'gone', version: 1 }])
  assert.deepEqual(small.nodes.map((n) => n.id).sort(), ['dataset:gone@1', 'dataset:odd@1', 'feature_view:fv@2'])
  assert.equal(small.nodes.find((n) => n.id === 'dataset:gone@1')!.missing, true)
})

test('predict.batch scores: the input dataset version and the model version, which leads nowhere further', async () => {
  const users = version('users', 4, [])
  const scores = version('churn_scores', 1, [{ dataset: 'users', version: 4 }, { model: 'churn', model_version: 3 }])
  const s = store([users, scores])
  const graph = await lineage(scores, s.read)
  assert.deepEqual(graph.nodes.map((n) => [n.id, n.kind]).sort(), [['dataset:churn_scores@1', 'dataset'], ['dataset:users@4', 'dataset'], ['model:churn@3', 'model']])
  assert.deepEqual(graph.nodes.find((n) => n.kind === 'model'), { id: 'model:churn@3', kind: 'model', name: 'churn', version: 3 })
  assert.deepEqual(graph.edges.map((e) => `${e.from} -> ${e.to}`).sort(), ['dataset:users@4 -> dataset:churn_scores@1', 'model:churn@3 -> dataset:churn_scores@1'])
  assert.equal(s.reads(), 1)
})
