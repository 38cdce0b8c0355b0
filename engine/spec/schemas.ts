/**
 * Loads every JSON Schema under schemas/ and compiles each one once per process with Ajv.
 * The operator params schemas come from the operator registry, so a new operator is validated
 * as soon as it is registered.
 */
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ValidateFunction, AnySchema } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { OPERATORS } from '../../operators/index.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020

const SCHEMA_DIR = new URL('../../schemas/', import.meta.url)

export function readSchema(relative: string): AnySchema {
  return JSON.parse(readFileSync(new URL(relative, SCHEMA_DIR), 'utf8')) as AnySchema
}

export interface CompiledSchemas {
  dag: ValidateFunction
  featureView: ValidateFunction
  config: ValidateFunction
}

let compiled: CompiledSchemas | undefined

export function createAjv(): Ajv2020 {
  // verbose: errors carry their schema, used to list allowed keys and enum values in messages.
  const ajv = new Ajv2020({ allErrors: true, strict: true, discriminator: true, verbose: true, allowUnionTypes: true })
  addFormats(ajv)
  return ajv
}

export function schemas(): CompiledSchemas {
  if (compiled) return compiled
  const ajv = createAjv()
  for (const operator of Object.values(OPERATORS)) {
    ajv.addSchema(operator.paramsSchema as AnySchema, `operators/${operator.type}.params.schema.json`)
  }
  compiled = {
    dag: ajv.compile(readSchema('dag.schema.json')),
    featureView: ajv.compile(readSchema('feature-view.schema.json')),
    config: ajv.compile(readSchema('config.schema.json')),
  }
  return compiled
}
