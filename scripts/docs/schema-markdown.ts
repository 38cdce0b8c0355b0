/**
 * Reference pages from JSON Schemas, pure: a schema in, Markdown out. Every key gets one row (its path,
 * type, whether it is required, default, allowed values and description); nested mappings, lists of
 * mappings and `additionalProperties` maps (`tasks.<id>`) are walked, `$ref`s into `$defs` followed.
 * The pages are generated (`npm run docs`) and a test fails when a committed page differs, so the
 * reference can never drift from the schemas the validator uses.
 */
type Schema = { [key: string]: unknown }

export interface Row {
  path: string
  type: string
  required: boolean
  default?: unknown
  allowed?: string
  description: string
}

const isSchema = (v: unknown): v is Schema => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Follows a local `$ref` (`#/$defs/name`) within `root`. */
function resolve(root: Schema, schema: Schema): Schema {
  let current = schema
  for (let hops = 0; typeof current.$ref === 'string' && hops < 16; hops++) {
    const ref = current.$ref
    const target = ref.startsWith('#/') ? ref.slice(2).split('/').reduce<unknown>((node, part) => (isSchema(node) ? node[part] : undefined), root) : undefined
    if (!isSchema(target)) break
    const { $ref: _drop, ...rest } = current
    current = { ...target, ...rest }
  }
  return current
}

function typeOf(root: Schema, schema: Schema): string {
  const s = resolve(root, schema)
  if (s.const !== undefined) return JSON.stringify(s.const)
  const alternatives = (s.oneOf ?? s.anyOf) as Schema[] | undefined
  if (Array.isArray(alternatives) && s.type === undefined) return [...new Set(alternatives.map((a) => typeOf(root, a)))].join(' \\| ')
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : []
  return types
    .map((t) => {
      if (t === 'array' && isSchema(s.items)) return `list of ${typeOf(root, s.items)}`
      if (t === 'object') return 'mapping'
      return t
    })
    .join(' \\| ') || (s.enum ? 'string' : 'any')
}

function allowedOf(root: Schema, schema: Schema): string | undefined {
  const s = resolve(root, schema)
  const parts: string[] = []
  if (Array.isArray(s.enum)) parts.push(s.enum.map((v) => `\`${String(v)}\``).join(', '))
  if (typeof s.pattern === 'string') parts.push(`\`${s.pattern}\``)
  const items = isSchema(s.items) ? resolve(root, s.items) : undefined
  if (items && Array.isArray(items.enum)) parts.push(items.enum.map((v) => `\`${String(v)}\``).join(', '))
  if (items && typeof items.pattern === 'string') parts.push(`items \`${items.pattern}\``)
  for (const [key, word] of [['minimum', '>='], ['exclusiveMinimum', '>'], ['maximum', '<='], ['exclusiveMaximum', '<'], ['minItems', 'at least'], ['maxItems', 'at most']] as const) {
    if (typeof s[key] === 'number') parts.push(`${word} ${String(s[key])}${key.endsWith('Items') ? ' items' : ''}`)
  }
  return parts.length > 0 ? parts.join('; ') : undefined
}

/** Every documented key under `schema`, depth first, in the schema's order. */
export function schemaRows(root: Schema, schema: Schema = root, prefix = '', seen: ReadonlySet<Schema> = new Set()): Row[] {
  const s = resolve(root, schema)
  if (seen.has(s)) return []
  const inner = new Set(seen).add(s)
  const rows: Row[] = []
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : [])
  const properties = isSchema(s.properties) ? s.properties : {}
  for (const [key, value] of Object.entries(properties)) {
    if (!isSchema(value)) continue
    const path = prefix === '' ? key : `${prefix}.${key}`
    const child = resolve(root, value)
    const description = typeof value.description === 'string' ? value.description : typeof child.description === 'string' ? child.description : ''
    const allowed = allowedOf(root, value)
    rows.push({ path, type: typeOf(root, value), required: required.has(key), ...(child.default !== undefined ? { default: child.default } : {}), ...(allowed ? { allowed } : {}), description })
    rows.push(...nested(root, child, path, inner))
  }
  // Alternatives of one mapping (oneOf branches with their own keys): their keys, once each.
  for (const branch of ((s.oneOf ?? s.anyOf) as unknown[] | undefined) ?? []) {
    if (!isSchema(branch)) continue
    for (const row of schemaRows(root, branch, prefix, inner)) if (!rows.some((r) => r.path === row.path)) rows.push(row)
  }
  return rows
}

function nested(root: Schema, child: Schema, path: string, seen: ReadonlySet<Schema>): Row[] {
  const rows: Row[] = []
  if (isSchema(child.properties) || Array.isArray(child.oneOf) || Array.isArray(child.anyOf)) rows.push(...schemaRows(root, child, path, seen))
  if (isSchema(child.additionalProperties)) {
    const names = isSchema(child.propertyNames) ? resolve(root, child.propertyNames) : undefined
    const placeholder = names && typeof names.pattern === 'string' && /\[a-z\]/.test(names.pattern) ? '<name>' : '<key>'
    rows.push(...schemaRows(root, child.additionalProperties, `${path}.${placeholder}`, seen))
  }
  if (isSchema(child.items)) rows.push(...schemaRows(root, child.items, `${path}[]`, seen))
  return rows
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n+/g, ' ')

export function rowsTable(rows: readonly Row[]): string {
  const lines = ['| key | type | required | default | allowed | description |', '|---|---|---|---|---|---|']
  for (const r of rows) {
    lines.push(`| \`${r.path}\` | ${r.type} | ${r.required ? 'yes' : ''} | ${r.default === undefined ? '' : `\`${JSON.stringify(r.default)}\``} | ${r.allowed ? cell(r.allowed) : ''} | ${cell(r.description)} |`)
  }
  return lines.join('\n')
}

export const GENERATED_NOTE = '<!-- Generated by `npm run docs` from the schemas and engine/errors.ts; do not edit by hand (a test fails when it is stale). -->'

export function schemaPage(title: string, intro: string, schema: Schema): string {
  return `${GENERATED_NOTE}\n# ${title}\n\n${intro}\n\n${rowsTable(schemaRows(schema))}\n`
}
