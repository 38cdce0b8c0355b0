/**
 * Every generated reference page, as file path (relative to the repository) -> Markdown: the DAG,
 * feature view and cairn.yaml formats, the params of every registered operator, and the error codes.
 * Pure apart from reading the schema files; `scripts/generate-docs.ts` writes them, the docs test
 * compares them with the committed files.
 */
import { readFileSync } from 'node:fs'
import { ERROR_CODES } from '../../engine/errors.ts'
import { OPERATORS } from '../../operators/index.ts'
import { GENERATED_NOTE, rowsTable, schemaPage, schemaRows } from './schema-markdown.ts'

const ROOT = new URL('../../', import.meta.url)
const readSchema = (path: string): { [key: string]: unknown } => JSON.parse(readFileSync(new URL(path, ROOT), 'utf8')) as { [key: string]: unknown }

function operatorsPage(): string {
  const sections = Object.values(OPERATORS)
    .slice()
    .sort((a, b) => a.type.localeCompare(b.type))
    .map((operator) => {
      const schema = operator.paramsSchema as { [key: string]: unknown }
      const rows = schemaRows(schema)
      const description = typeof schema.description === 'string' ? schema.description : ''
      return `## \`${operator.type}\`\n\n${description}\n\n${rows.length > 0 ? rowsTable(rows) : 'No params.'}\n`
    })
  return `${GENERATED_NOTE}\n# Operator reference\n\nThe \`params\` of every operator, from its JSON Schema in \`schemas/operators/\` (what \`cairn validate\` checks).\nTemplates (\`{{ ... }}\`) may stand in for a value of any type; they are checked again once rendered.\n\n${sections.join('\n')}`
}

function errorsPage(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`)
  return `${GENERATED_NOTE}\n# Diagnostic codes\n\nEvery code \`cairn validate\` (and the scheduler, for import errors) can report, from the registry in\n\`engine/errors.ts\`.\n\n| code | meaning |\n|---|---|\n${rows.join('\n')}\n`
}

export function referencePages(): Map<string, string> {
  return new Map([
    ['docs/reference/dag.md', schemaPage('DAG file reference', 'Every key of a DAG file (`dags/*.yaml`), from `schemas/dag.schema.json`. The rules the validator checks beyond the schema (dependencies, cycles, templates, dates, cron) are in the project\'s specification and `docs/engine.md`.', readSchema('schemas/dag.schema.json'))],
    ['docs/reference/feature-view.md', schemaPage('Feature view reference', 'Every key of a feature view file (`dags/features/*.yaml`), from `schemas/feature-view.schema.json`. What the aggregates mean: `docs/data.md`.', readSchema('schemas/feature-view.schema.json'))],
    ['docs/reference/config.md', schemaPage('Configuration reference (`cairn.yaml`)', 'Every key of `cairn.yaml` (at `CAIRN_CONFIG`, default `cairn.yaml`), from `schemas/config.schema.json`. Environment variables override the matching keys: `CAIRN_DAGS`, `CAIRN_HOME`, `DATABASE_URL`, `CAIRN_PORT`, `CAIRN_SERVE_PORT`.', readSchema('schemas/config.schema.json'))],
    ['docs/reference/operators.md', operatorsPage()],
    ['docs/errors.md', errorsPage()],
  ])
}
