/**
 * Writes the example data of dags/churn_data.yaml: daily events per user (dags/data/events-YYYY-MM.csv)
 * and churn labels (dags/data/labels.jsonl), deterministic for a seed. The signal is real: each user
 * has an engagement that drifts slowly; it drives how often and how much they spend, and a user is
 * labelled churned when their engagement over the 14 days after the label's time is low. Features
 * computed from past events (spend_7d, events_1d, avg_amount) therefore predict the label, and a
 * model has something to learn.
 *
 * `--drift-from DATE` injects drift from that day on (covariate and concept drift at once): what a
 * user spends per event no longer grows with their engagement but shrinks with it, and on a higher
 * scale (disengaging users make large one-off purchases). Every random draw is the same with or
 * without it, so the data before DATE is identical; a model trained before DATE ranks users worse
 * after it, and the spend features' distributions move (evaluate.drift sees it).
 *
 *   node scripts/generate-example-data.ts [--from 2026-09-01] [--to 2027-09-01] [--users 200] [--seed 7] [--drift-from YYYY-MM-DD] [--out dags/data]
 */
import { mkdirSync, writeFileSync, readdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { prng } from '../engine/seeded-random.ts'

const { values } = parseArgs({
  options: {
    from: { type: 'string', default: '2026-09-01' },
    to: { type: 'string', default: '2027-09-01' },
    users: { type: 'string', default: '200' },
    seed: { type: 'string', default: '7' },
    'drift-from': { type: 'string' },
    out: { type: 'string', default: 'dags/data' },
  },
})

const DAY = 86_400_000
const from = Date.parse(`${values.from}T00:00:00Z`)
const to = Date.parse(`${values.to}T00:00:00Z`)
const users = Number(values.users)
const driftFrom = values['drift-from'] === undefined ? Infinity : Date.parse(`${values['drift-from']}T00:00:00Z`)
if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from || !Number.isInteger(users) || users < 1 || Number.isNaN(driftFrom)) {
  console.error('usage: generate-example-data.ts --from YYYY-MM-DD --to YYYY-MM-DD --users N --seed N [--drift-from YYYY-MM-DD] --out DIR')
  process.exit(2)
}
const out = resolve(values.out)

const random = prng(Number(values.seed))
const normal = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
function poisson(mean: number): number {
  const limit = Math.exp(-mean)
  let k = 0
  for (let p = random(); p > limit; p *= random()) k++
  return k
}

const COUNTRIES = ['DE', 'FR', 'NL', 'ES']
const days = Math.round((to - from) / DAY)
// Engagement per user and day, extended 14 days past the end so that the last labels can be computed.
const engagement: number[][] = []
const country: string[] = []
for (let u = 0; u < users; u++) {
  const series: number[] = []
  let e = 0.15 + 0.8 * random()
  for (let d = 0; d < days + 14; d++) {
    e = Math.min(1, Math.max(0.02, e + 0.045 * normal()))
    series.push(e)
  }
  engagement.push(series)
  country.push(COUNTRIES[Math.floor(random() * COUNTRIES.length)]!)
}
const userId = (u: number): string => `u${String(u + 1).padStart(3, '0')}`

// Events, one CSV per month.
const months = new Map<string, string[]>()
for (let d = 0; d < days; d++) {
  const dayStart = from + d * DAY
  const rows: { ts: number; line: string }[] = []
  for (let u = 0; u < users; u++) {
    const e = engagement[u]![d]!
    for (let i = poisson(2.2 * e); i > 0; i--) {
      const ts = dayStart + Math.floor(random() * DAY / 1000) * 1000
      const scale = dayStart < driftFrom ? 5 + 60 * e : 20 + 150 * (1 - e)
      const amount = Math.max(0.5, scale * Math.exp(0.35 * normal()))
      rows.push({ ts, line: `${userId(u)},${new Date(ts).toISOString().replace('.000Z', 'Z')},${amount.toFixed(2)},${country[u]}` })
    }
  }
  rows.sort((a, b) => a.ts - b.ts)
  const month = new Date(dayStart).toISOString().slice(0, 7)
  let lines = months.get(month)
  if (!lines) months.set(month, (lines = []))
  for (const row of rows) lines.push(row.line)
}

// Labels on the 1st and the 15th of each month at 12:00 UTC: churned when the next 14 days' engagement is low.
const labels: string[] = []
for (let d = 0; d < days; d++) {
  const date = new Date(from + d * DAY)
  if (date.getUTCDate() !== 1 && date.getUTCDate() !== 15) continue
  if (d < 14) continue // no history yet to compute features from
  const labelTs = new Date(from + d * DAY + DAY / 2).toISOString().replace('.000Z', 'Z')
  for (let u = 0; u < users; u++) {
    const future = engagement[u]!.slice(d, d + 14)
    const mean = future.reduce((a, b) => a + b, 0) / future.length
    const churned = (mean < 0.3) !== random() < 0.05 // 5% label noise
    labels.push(JSON.stringify({ user_id: userId(u), label_ts: labelTs, churned }))
  }
}

mkdirSync(out, { recursive: true })
for (const name of readdirSync(out)) if (/^events-\d{4}-\d{2}\.csv$/.test(name) || name === 'labels.jsonl') rmSync(join(out, name))
let events = 0
for (const [month, lines] of months) {
  writeFileSync(join(out, `events-${month}.csv`), `user_id,ts,amount,country\n${lines.join('\n')}\n`)
  events += lines.length
}
writeFileSync(join(out, 'labels.jsonl'), `${labels.join('\n')}\n`)
console.log(`wrote ${events} events in ${months.size} monthly files and ${labels.length} labels to ${out}`)
