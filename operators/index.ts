/** The single registry of operators, keyed by the `operator:` value used in DAG files. */
import type { OperatorDefinition } from './define.ts'
import { shell } from './shell.ts'
import { noop } from './noop.ts'
import { ingest } from './ingest.ts'
import { featuresMaterialize } from './features-materialize.ts'
import { featuresTrainingSet } from './features-training-set.ts'
import { train } from './train.ts'
import { evaluateGate } from './evaluate-gate.ts'
import { predictBatch } from './predict-batch.ts'
import { serveRollout } from './serve-rollout.ts'
import { evaluateDrift } from './evaluate-drift.ts'

const ALL: readonly OperatorDefinition[] = [shell, noop, ingest, featuresMaterialize, featuresTrainingSet, train, evaluateGate, evaluateDrift, predictBatch, serveRollout]

export const OPERATORS: Readonly<Record<string, OperatorDefinition>> = Object.freeze(
  Object.fromEntries(ALL.map((operator) => [operator.type, operator])),
)

export function findOperator(type: string): OperatorDefinition | undefined {
  return Object.hasOwn(OPERATORS, type) ? OPERATORS[type] : undefined
}
