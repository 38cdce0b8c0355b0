/**
 * Generated training sets as Parquet files (written by DuckDB from a CSV), with a known signal:
 * binary label = 1 when a fixed linear score of the features plus noise is positive; multiclass =
 * the argmax of three scores; regression = a linear score plus noise. Deterministic for a seed.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { openDuckDb, sqlString } from '../../engine/data/duckdb.ts'
import { prng } from '../../engine/train/data.ts'

export interface GeneratedSet {
  file: string
  features: string[]
}

export async function writeTrainingSet(
  dir: string,
  options: { rows: number; task: 'binary' | 'multiclass' | 'regression'; seed?: number; features?: number; name?: string; nulls?: boolean },
): Promise<GeneratedSet> {
  const random = prng(options.seed ?? 1)
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random())
  const f = options.features ?? 6
  const features = Array.from({ length: f }, (_, i) => `x${i}`)
  const lines = [`id,${features.join(',')},flag,country,label`]
  for (let r = 0; r < options.rows; r++) {
    // Features on different scales, so standardization matters.
    const x = features.map((_, i) => gauss() * (1 + i * 10) + i * 5)
    const z = x.map((v, i) => (v - i * 5) / (1 + i * 10))
    const score = 1.5 * z[0]! - 2 * z[1]! + z[2]! * z[3]! + 0.5 * gauss()
    let label: string
    if (options.task === 'binary') label = score > 0 ? '1' : '0'
    else if (options.task === 'multiclass') {
      const s = [score, z[2]! - z[4]!, -score + 0.5 * z[5 % f]!]
      label = ['a', 'b', 'c'][s.indexOf(Math.max(...s))]!
    } else label = String(score * 10 + 3)
    const cells = x.map((v, i) => (options.nulls && i === 1 && r % 17 === 0 ? '' : v.toFixed(6)))
    lines.push(`${r},${cells.join(',')},${r % 3 === 0 ? 'true' : 'false'},${r % 2 ? 'DE' : 'FR'},${label}`)
  }
  const csv = path.join(dir, `${options.name ?? 'train'}.csv`)
  await writeFile(csv, `${lines.join('\n')}\n`)
  const file = path.join(dir, `${options.name ?? 'train'}.parquet`)
  const db = await openDuckDb({ threads: 1 })
  try {
    const types = `{'id': 'BIGINT', ${features.map((c) => `'${c}': 'DOUBLE'`).join(', ')}, 'flag': 'BOOLEAN', 'country': 'VARCHAR', 'label': '${options.task === 'multiclass' ? 'VARCHAR' : options.task === 'binary' ? 'INTEGER' : 'DOUBLE'}'}`
    await db.run(`COPY (SELECT * FROM read_csv(${sqlString(csv)}, header = true, columns = ${types})) TO ${sqlString(file)} (FORMAT parquet)`)
  } finally {
    db.close()
  }
  return { file, features }
}
