/**
 * One short line of a model version's metrics for tables (`cairn models show`): the validation
 * figures a trainer recorded, else the version's own top-level numbers (a registered or gated
 * version), each to 3 decimals; the full metrics stay in `--format json` and the `metrics` line.
 */
export function metricsSummary(metrics: Readonly<Record<string, unknown>>, most = 4): string {
  const validation = metrics.validation
  const source = validation !== null && typeof validation === 'object' && !Array.isArray(validation) ? (validation as Record<string, unknown>) : metrics
  const figures = Object.entries(source)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1]) && entry[0] !== 'rows')
    .slice(0, most)
    .map(([name, value]) => `${name} ${Number.isInteger(value) ? value : value.toFixed(3)}`)
  if (figures.length === 0) return '-'
  return source === metrics ? figures.join(', ') : `validation ${figures.join(', ')}`
}
