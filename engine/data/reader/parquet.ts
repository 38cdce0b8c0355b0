/**
 * Parquet into `loaded`: DuckDB reads the files' own types; declared columns are converted by the
 * same rules as text sources (a value that does not convert is a bad row, named by its row number),
 * undeclared columns keep their type, or become text when a dataset cannot hold it (lists, structs).
 */
import { sqlIdent } from '../duckdb.ts'
import { columnTypeOf } from '../column-types.ts'
import { dataInvalid } from './failure.ts'
import type { ReadFailure } from './failure.ts'
import { LOADED, countLoaded, missingColumnsMessage, planColumns } from './loaded.ts'
import type { LoadContext, LoadedPart, LoadedSource } from './loaded.ts'
import type { SourceFile } from './csv.ts'
import { typedSelect } from './typing.ts'
import type { ColumnPlan } from './typing.ts'

export async function loadParquet(files: readonly SourceFile[], ctx: LoadContext): Promise<LoadedSource | ReadFailure> {
  let plans: ColumnPlan[] | undefined
  const parts: LoadedPart[] = []
  for (const [i, file] of files.entries()) {
    const schema = await ctx.duck.rows<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet($1)`, [file.path])
    const names = schema.map((c) => c.column_name)
    if (plans === undefined) {
      const planned = planColumns(names, (_n, index) => {
        const duckType = schema[index]!.column_type
        const type = columnTypeOf(duckType)
        return type ? { type, source: 'native' } : { type: 'string', source: 'native', note: `${duckType} kept as text` }
      }, () => 'native', ctx, file.label)
      if ('missing' in planned) return dataInvalid(missingColumnsMessage(file.label, planned.missing, names))
      plans = planned
    } else if (names.join('\u0000') !== plans.map((p) => p.name).join('\u0000')) {
      return dataInvalid(`${file.label} has the columns ${names.join(', ')}, but ${files[0]!.label} has ${plans.map((p) => p.name).join(', ')}: every file of a source needs the same columns`)
    }
    const select = typedSelect(plans, (p) => sqlIdent(p.name), `read_parquet($1, file_row_number = true)`, { extraColumns: 'file_row_number AS __ord' })
    const before = i === 0 ? 0 : await countLoaded(ctx.duck)
    await ctx.duck.run(i === 0 ? `CREATE TABLE ${LOADED} AS ${select}` : `INSERT INTO ${LOADED} ${select}`, [file.path])
    const end = await countLoaded(ctx.duck)
    parts.push({
      source: file.label,
      unit: 'row',
      firstRowid: before,
      endRowid: end,
      rejects: [],
      async locate(rows) {
        return new Map(rows.map((r) => [r.rowid, { line: (r.ord ?? 0) + 1, raw: null }]))
      },
    })
  }
  return { plans: plans!, parts, hasOrd: true }
}
