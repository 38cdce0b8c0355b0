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

export function describeSchedule(schedule: string | null | undefined): string {
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
