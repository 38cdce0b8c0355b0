import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import formatsModule from 'ajv-formats'

// Each schema's own `examples` are its valid cases (editors show them too); the invalid cases are here.
// Each invalid case breaks exactly one rule of an otherwise valid document.

const schemasDir = new URL('../../schemas/', import.meta.url)

interface Cases {
  valid?: unknown[]
  invalid: Record<string, unknown>
}

const ingestBase = { source: { kind: 'csv', path: 'data/events.csv' }, dataset: 'events' }
const trainBase = { executor: 'local', nodes: 1, command: ['python', 'train.py'] }
const gateBase = { model: '{{ tasks.train.outputs.model_uri }}', dataset: 'holdout', label: 'y', metrics: ['auc'], thresholds: { auc: { min: 0.7 } } }
const rolloutBase = {
  model_name: 'churn', version: 3, steps: [10, 100], step_duration: '5m',
  analysis: { min_requests: 100, max_error_rate: 0.01, max_p99_latency_ms: 50 },
}
const viewBase = { feature_view: 'v', entity: 'user_id', source: 'events', timestamp: 'ts', features: { n: { agg: 'count' } } }

const cases: Record<string, Cases> = {
  'operators/shell.params.schema.json': {
    invalid: {
      'both command and script': { command: ['true'], script: 'true' },
      'neither command nor script': { workdir: '/tmp' },
      'empty command': { command: [] },
      'env belongs to the task': { command: ['true'], env: { A: '1' } },
    },
  },
  'operators/noop.params.schema.json': {
    invalid: { 'any key': { sleep: 1 }, 'not a mapping': [] },
  },
  'operators/ingest.params.schema.json': {
    valid: [{ ...ingestBase, source: { kind: 'parquet', path: 'x.parquet' } }],
    invalid: {
      'unknown source kind': { ...ingestBase, source: { kind: 'ftp', path: 'x' } },
      'key of another kind': { ...ingestBase, source: { kind: 'csv', path: 'x', url: 'https://x' } },
      'http url without scheme': { ...ingestBase, source: { kind: 'http', url: 'example.com', format: 'csv' } },
      'two-char delimiter': { ...ingestBase, source: { kind: 'csv', path: 'x', options: { delimiter: ';;' } } },
      'interval without time_column': { ...ingestBase, mode: 'interval' },
      'templated dataset name': { ...ingestBase, dataset: 'events_{{ ds }}' },
      'typo in expect': { ...ingestBase, expect: { min_row: 1 } },
      'negative max_bad_rows': { ...ingestBase, max_bad_rows: -1 },
      'unknown column type': { ...ingestBase, columns: { a: { type: 'text' } } },
    },
  },
  'operators/features.materialize.params.schema.json': {
    invalid: { 'missing view': { online: true }, 'online as string': { feature_view: 'v', online: 'yes' } },
  },
  'operators/features.training_set.params.schema.json': {
    valid: [{ labels: '{{ tasks.labels.outputs.dataset }}', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd' }, { labels: 'l', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd', labels_window: '60d' }, { labels: 'churn_labels@2', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd' }],
    invalid: {
      'labels version 0': { labels: 'l@0', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd' },
      'labels window without a unit': { labels: 'l', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd', labels_window: '60' },
      'empty features': { labels: 'l', timestamp: 'ts', label: 'y', features: [], dataset: 'd' },
      'holdout of 1': { labels: 'l', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd', split: { holdout: 1 } },
      'split of a dataset whose _holdout name is too long': { labels: 'l', timestamp: 'ts', label: 'y', features: ['v'], dataset: `d${'x'.repeat(56)}`, split: { holdout: 0.2 } },
      'unknown key': { labels: 'l', timestamp: 'ts', label: 'y', features: ['v'], dataset: 'd', join: 'left' },
    },
  },
  'operators/train.params.schema.json': {
    valid: [{ ...trainBase, slurm: { time: 30, mem: '512M' } }, { ...trainBase, slurm: { time: '1-00:00:00' } }, { executor: 'slurm', nodes: 1, command: ['/bin/true'] }],
    invalid: {
      'trainer and command': { ...trainBase, trainer: { dataset: 'd', label: 'y', task: 'binary', model: { kind: 'mlp' }, epochs: 1, batch_size: 1, learning_rate: 0.1 } },
      'ssh without cluster': { ...trainBase, executor: 'ssh' },
      'zero nodes': { ...trainBase, nodes: 0 },
      'nodes as template': { ...trainBase, nodes: '{{ params.nodes }}' },
      'bad slurm time': { ...trainBase, slurm: { time: '2h' } },
      'bad mem': { ...trainBase, slurm: { mem: '64GB' } },
      'zero learning rate': {
        executor: 'local', nodes: 1,
        trainer: { dataset: 'd', label: 'y', task: 'binary', model: { kind: 'mlp' }, epochs: 1, batch_size: 1, learning_rate: 0 },
      },
    },
  },
  'operators/evaluate.gate.params.schema.json': {
    // compare_to without model_name: the name comes from a models:/ reference (operators/evaluate-gate/model-name.ts checks files).
    valid: [gateBase, { ...gateBase, compare_to: 'production' }],
    invalid: {
      'unknown metric': { ...gateBase, metrics: ['auc', 'mse'] },
      'threshold on unknown metric': { ...gateBase, thresholds: { acc: { min: 0.7 } } },
      'empty threshold': { ...gateBase, thresholds: { auc: {} } },
      'min_improvement without compare_to': { ...gateBase, min_improvement: { auc: 0.01 } },
      'duplicate metric': { ...gateBase, metrics: ['auc', 'auc'] },
    },
  },
  'operators/predict.batch.params.schema.json': {
    valid: [{ model_name: 'm', version: '{{ tasks.train.outputs.model_version }}', dataset: 'd', output: 'o' }],
    invalid: {
      'version 0': { model_name: 'm', version: 0, dataset: 'd', output: 'o' },
      'unknown stage': { model_name: 'm', version: 'prod', dataset: 'd', output: 'o' },
      'missing output': { model_name: 'm', dataset: 'd' },
    },
  },
  'operators/evaluate.drift.params.schema.json': {
    valid: [
      { dataset: 'd', model: 'models:/churn/production' },
      { dataset: 'd@2', reference: 'd@1', bins: 2, thresholds: { ks: 1 } },
      { online: { feature_view: 'user_activity', window: '1d12h' }, reference: 'churn_training' },
      { dataset: 'd', model: 'models:/churn/production', if_no_reference: 'fail' },
    ],
    invalid: {
      'neither model nor reference': { dataset: 'd' },
      'neither dataset nor online': { model: 'models:/m/1' },
      'both dataset and online': { dataset: 'd', online: { feature_view: 'v', window: '7d' }, model: 'models:/m/1' },
      'online without window': { online: { feature_view: 'v' }, model: 'models:/m/1' },
      'online window without unit': { online: { feature_view: 'v', window: '7' }, model: 'models:/m/1' },
      'online view not a name': { online: { feature_view: 'User Activity', window: '7d' }, model: 'models:/m/1' },
      'unknown key in online': { online: { feature_view: 'v', window: '7d', ttl: '1d' }, model: 'models:/m/1' },
      'unknown if_no_reference': { dataset: 'd', model: 'models:/m/1', if_no_reference: 'skip' },
      'both model and reference': { dataset: 'd', model: 'models:/m/1', reference: 'r' },
      'one bin': { dataset: 'd', reference: 'r', bins: 1 },
      'psi of 0': { dataset: 'd', reference: 'r', thresholds: { psi: 0 } },
      'unknown threshold': { dataset: 'd', reference: 'r', thresholds: { kl: 0.1 } },
    },
  },
  'operators/serve.rollout.params.schema.json': {
    valid: [rolloutBase],
    invalid: {
      'step over 100': { ...rolloutBase, steps: [50, 150] },
      'step of 0': { ...rolloutBase, steps: [0, 100] },
      'duration without unit': { ...rolloutBase, step_duration: '300' },
      'error rate over 1': { ...rolloutBase, analysis: { ...rolloutBase.analysis, max_error_rate: 2 } },
      'unknown on_failure': { ...rolloutBase, on_failure: 'retry' },
    },
  },
  'feature-view.schema.json': {
    valid: [viewBase],
    invalid: {
      'sum without column': { ...viewBase, features: { s: { agg: 'sum' } } },
      'no features': { ...viewBase, features: {} },
      'bad window': { ...viewBase, features: { n: { agg: 'count', window: '7 days' } } },
      'empty entity list': { ...viewBase, entity: [] },
      'unknown top-level key': { ...viewBase, schedule: '@daily' },
    },
  },
  'config.schema.json': {
    valid: [{}, { clusters: { hpc: { kind: 'slurm', submit: { via: 'ssh', host: 'login', env: { SLURM_CONF: '/etc/slurm-b/slurm.conf' } }, workdir: '/shared/train' } } }, { workers: { max_log_bytes: '5MB' } }, { workers: { max_log_bytes: '512 KB' } }, { workers: { max_log_bytes: 1048576 } }, { workers: { queues: ['default', 'team_a'] } }],
    invalid: {
      'no queues': { workers: { queues: [] } },
      'queue name with a capital': { workers: { queues: ['Team_a'] } },
      'a queue twice': { workers: { queues: ['team_a', 'team_a'] } },
      'log cap in parsecs': { workers: { max_log_bytes: '5 parsecs' } },
      'log cap below 64 KiB in bytes': { workers: { max_log_bytes: 1000 } },
      'negative log cap': { workers: { max_log_bytes: '-5MB' } },
      'unknown top-level key': { dag_folder: 'dags' },
      'port out of range': { web: { port: 70000 } },
      'ssh cluster without hosts': { clusters: { lab: { kind: 'ssh', hosts: [] } } },
      'slurm via ssh without host': { clusters: { hpc: { kind: 'slurm', submit: { via: 'ssh' } } } },
      'slurm via ssh without workdir': { clusters: { hpc: { kind: 'slurm', submit: { via: 'ssh', host: 'login' } } } },
      'slurm submit.env with a bad name': { clusters: { hpc: { kind: 'slurm', submit: { via: 'ssh', host: 'login', env: { 'SLURM CONF': '/x' } }, workdir: '/w' } } },
      'slurm submit.env with a number': { clusters: { hpc: { kind: 'slurm', submit: { via: 'local', env: { SLURM_CONF: 1 } } } } },
      'unknown cluster kind': { clusters: { k8s: { kind: 'kubernetes' } } },
      'url and url_env': { connections: { w: { kind: 'postgres', url: 'postgres://x', url_env: 'W_URL' } } },
    },
  },
}

function readSchema(file: string): { examples?: unknown[] } & Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(file, schemasDir), 'utf8')) as { examples?: unknown[] } & Record<string, unknown>
}

function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, discriminator: true })
  formatsModule.default(ajv)
  return ajv
}

test('every operator schema has cases here', () => {
  const files = readdirSync(new URL('operators/', schemasDir)).filter((f) => f.endsWith('.params.schema.json'))
  assert.deepEqual(files.map((f) => `operators/${f}`).sort(), Object.keys(cases).filter((f) => f.startsWith('operators/')).sort())
})

for (const [file, { valid = [], invalid }] of Object.entries(cases)) {
  test(`${file} compiles in strict mode and sorts its cases`, () => {
    const schema = readSchema(file)
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema')
    assert.equal(schema.$id, undefined, 'schemas are referenced by relative path, without $id')
    const validate = newAjv().compile(schema)
    const examples = [...(schema.examples ?? []), ...valid]
    assert.ok(examples.length >= 1, 'at least one valid example')
    for (const example of examples) {
      assert.ok(validate(example), `${JSON.stringify(example)}: ${JSON.stringify(validate.errors)}`)
    }
    assert.ok(Object.keys(invalid).length >= 2, 'at least two invalid examples')
    for (const [name, example] of Object.entries(invalid)) {
      assert.equal(validate(example), false, `accepted: ${name}`)
    }
  })
}
