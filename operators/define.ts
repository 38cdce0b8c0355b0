/**
 * What an operator is: a type name, the JSON Schema of its params (also published under
 * schemas/operators/), and the function that does the work. The registry in index.ts is the only
 * place operators are listed; an unknown `operator:` is a validation error, not a runtime surprise.
 */
export interface OperatorDefinition {
  /** The `operator:` value in a DAG file, e.g. `shell` or `features.materialize`. */
  type: string
  /** One line for `cairn validate` messages and the docs. */
  summary: string
  paramsSchema: object
  /** Whether a task of this operator may omit `params` entirely. */
  paramsOptional?: boolean
}

export function defineOperator<T extends OperatorDefinition>(definition: T): T {
  return definition
}
