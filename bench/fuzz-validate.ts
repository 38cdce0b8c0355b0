/**
 * Runs the validator's fuzz property (test/fuzz/validate-property.ts) over 10,000 mutated DAG files
 * and prints the throughput and how many inputs came out valid or invalid. A benchmark prints
 * figures and never fails on timing; it exits 1 only when the property fails (a crash, or a
 * diagnostic without a proper place, code or message), printing the shrunk counterexample.
 *
 *   node bench/fuzz-validate.ts [runs] [seed]      (defaults: 10000, a seed from the clock)
 * Every valid file must also read the same with the careful parser as with the fast path;
 * FUZZ_CROSS_CHECK=0 skips that check.
 */
import fc from 'fast-check'
import { validateProperty } from '../test/fuzz/validate-property.ts'

const runs = Number(process.argv[2] ?? process.env.FUZZ_RUNS ?? 10_000)
const seed = Number(process.argv[3] ?? process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
const crossCheck = process.env.FUZZ_CROSS_CHECK !== '0'

const outcomes = { ok: 0, error: 0 }
const started = performance.now()
const details = fc.check(validateProperty((outcome) => outcomes[outcome]++, { crossCheck }), { numRuns: runs, seed })
const seconds = (performance.now() - started) / 1000
const cases = outcomes.ok + outcomes.error

console.log(`fuzz-validate: ${cases} cases in ${seconds.toFixed(2)} s = ${Math.round(cases / seconds)} cases/s (seed ${seed}${crossCheck ? ', cross-checked' : ''})`)
console.log(`  valid (no errors): ${outcomes.ok}`)
console.log(`  invalid (errors):  ${outcomes.error}`)
if (details.failed) {
  console.error(fc.defaultReportMessage(details))
  process.exit(1)
}
