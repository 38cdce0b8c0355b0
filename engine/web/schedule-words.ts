/** A schedule in words for people ("At 02:00, Monday through Friday"), by cronstrue. */
import cronstrue from 'cronstrue'

const PRESET_WORDS: Readonly<Record<string, string>> = {
  '@once': 'Once, at the start date',
  '@hourly': 'Every hour, on the hour',
  '@daily': 'Every day at 00:00',
  '@weekly': 'Every Sunday at 00:00',
  '@monthly': 'On the first of every month at 00:00',
  '@yearly': 'On 1 January at 00:00',
}

/** With `datasets` (a data-aware schedule), the words say when those trigger a run too. */
export function describeSchedule(schedule: string | null | undefined, datasets?: readonly string[]): string {
  if (datasets !== undefined && datasets.length > 0) {
    const when = `when ${datasets.length === 1 ? `dataset ${datasets[0]} has a new version` : `datasets ${datasets.slice(0, -1).join(', ')} and ${datasets.at(-1)} have new versions`}`
    return schedule === null || schedule === undefined ? `${when[0]!.toUpperCase()}${when.slice(1)}` : `${describeSchedule(schedule)}, and ${when}`
  }
  if (schedule === null || schedule === undefined) return 'Manual runs only'
  const preset = PRESET_WORDS[schedule.trim()]
  if (preset) return preset
  try {
    return cronstrue.toString(schedule, { use24HourTimeFormat: true, throwExceptionOnParseError: true })
  } catch {
    // The validator accepted it, so this is a spelling cronstrue does not know: show the expression.
    return schedule
  }
}
