/**
 * The live schema of a migrated database agrees with the state constants of engine/state/states.ts:
 * the CHECK constraint of every state column lists exactly the states the engine knows, in the
 * same order (the migrations are static SQL, so this is what keeps them in step; pg-boss's
 * drifter.ts checks its live schema the same way).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createDb } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import { ATTEMPT_STATE_LIST, RUN_STATE_LIST, TASK_STATE_LIST, attemptStateCheckSql, runStateCheckSql, taskStateCheckSql } from '../../engine/state/states.ts'
import { createTestDatabase, testLogger } from '../helpers/postgres.ts'

const EXPECTED: { table: string; column: string; states: readonly string[]; generated: string }[] = [
  { table: 'task_instance', column: 'state', states: TASK_STATE_LIST, generated: taskStateCheckSql('state') },
  { table: 'run', column: 'state', states: RUN_STATE_LIST, generated: runStateCheckSql('state') },
  { table: 'attempt', column: 'state', states: ATTEMPT_STATE_LIST, generated: attemptStateCheckSql('state') },
]

/** The quoted values of a CHECK as Postgres prints it: `CHECK ((state = ANY (ARRAY['a'::text, ...])))`. */
function checkValues(definition: string): string[] {
  return [...definition.matchAll(/'([^']*)'::text/g)].map((m) => m[1]!)
}

test('the CHECK constraints of the migrated state columns list exactly the engine\'s states', async (t) => {
  const log = testLogger()
  const db = createDb(await createTestDatabase(t), { log })
  t.after(() => db.close())
  await migrate(db, log)
  // A scratch table built from the generated CHECK, so both texts come out of the same printer.
  await db.query('CREATE TEMP TABLE generated_checks (state text)')
  for (const { table, column, states, generated } of EXPECTED) {
    const { rows } = await db.query<{ definition: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS definition
         FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND a.attname = $2`,
      [`cairn.${table}`, column],
    )
    assert.equal(rows.length, 1, `cairn.${table}.${column} has ${rows.length} CHECK constraints`)
    assert.deepEqual(checkValues(rows[0]!.definition), [...states], `cairn.${table}.${column}: ${rows[0]!.definition}`)

    const name = `generated_${table}`
    await db.query(`ALTER TABLE generated_checks ADD CONSTRAINT ${name} ${generated}`)
    const printed = await db.query<{ definition: string }>(`SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = $1`, [name])
    assert.equal(printed.rows[0]!.definition, rows[0]!.definition, `cairn.${table}.${column} differs from ${generated}`)
  }
  // The column type every state column shares with the constants' strings.
  const { rows: types } = await db.query<{ table_name: string; data_type: string }>(
    `SELECT table_name, data_type FROM information_schema.columns WHERE table_schema = 'cairn' AND column_name = 'state' AND table_name = ANY($1::text[]) ORDER BY table_name`,
    [EXPECTED.map((e) => e.table)],
  )
  assert.deepEqual(types.map((r) => [r.table_name, r.data_type]), [['attempt', 'text'], ['run', 'text'], ['task_instance', 'text']])
})
