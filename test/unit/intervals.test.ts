/**
 * Data intervals, catchup and the DST policy of engine/time/intervals.ts and fire-times.ts.
 *
 * DST policy under test: each wall-clock time the cron expression matches fires at the first instant the
 * DAG's wall clock reads that time or later. A time skipped by a spring-forward gap fires once, at the end
 * of the gap; a time repeated by falling back fires once, at its first occurrence. The property tests
 * check this against a simulated cron daemon that wakes every minute and fires once when a matching
 * wall-clock minute has been reached since it last woke.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CronExpressionParser } from 'cron-parser'
import { DateTime, IANAZone } from 'luxon'
import {
  dueIntervals,
  formatDs,
  formatDsNodash,
  intervalsBetween,
  intervalsFrom,
  nextInterval,
  type Catchup,
  type DueIntervalsInput,
  type Interval,
} from '../../engine/time/intervals.ts'
import { fireTimesAfter } from '../../engine/time/fire-times.ts'
import { parseSchedule, type Schedule } from '../../engine/time/schedule.ts'
import { parseDagDate } from '../../engine/time/dates.ts'

const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

const cron = (expression: string): Schedule => ({ kind: 'cron', cron: expression })
const once: Schedule = { kind: 'once' }
const at = (iso: string) => new Date(iso)
/** Intervals as [startISO, endISO] pairs, for readable assertions. */
const iso = (intervals: readonly Interval[]) => intervals.map((i) => [i.start.toISOString(), i.end.toISOString()])
const isoOne = (i: Interval | undefined) => (i === undefined ? undefined : [i.start.toISOString(), i.end.toISOString()])
/** The local wall clock of an instant, e.g. "2026-03-29 03:00 +02:00". */
const local = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone }).toFormat('yyyy-MM-dd HH:mm ZZ')
const fires = (expression: string, zone: string, from: string, count: number): string[] => {
  const found: string[] = []
  for (const t of fireTimesAfter(expression, IANAZone.create(zone), at(from).getTime() - 1)) {
    found.push(local(t, zone))
    if (found.length === count) break
  }
  return found
}

const daily = (over: Partial<DueIntervalsInput> = {}): DueIntervalsInput => ({
  schedule: cron('0 0 * * *'),
  timezone: 'UTC',
  startDate: at('2026-01-01T00:00:00Z'),
  catchup: 'all',
  lastLogicalDate: undefined,
  now: at('2026-01-11T06:00:00Z'),
  limit: 1000,
  ...over,
})

describe('nextInterval', () => {
  it('daily: consecutive fire times, the first at or after start_date', () => {
    const start = at('2026-01-01T00:00:00Z')
    assert.deepEqual(isoOne(nextInterval(cron('0 0 * * *'), 'UTC', undefined, start)), [
      '2026-01-01T00:00:00.000Z',
      '2026-01-02T00:00:00.000Z',
    ])
    assert.deepEqual(isoOne(nextInterval(cron('0 0 * * *'), 'UTC', at('2026-01-01T00:00:00.001Z'), start)), [
      '2026-01-02T00:00:00.000Z',
      '2026-01-03T00:00:00.000Z',
    ])
    // A start_date between fire times: the first interval starts at the next fire time, never before.
    assert.deepEqual(isoOne(nextInterval(cron('0 0 * * *'), 'UTC', undefined, at('2026-01-01T10:00:00Z'))), [
      '2026-01-02T00:00:00.000Z',
      '2026-01-03T00:00:00.000Z',
    ])
    // `after` before start_date does not reach back past start_date.
    assert.deepEqual(isoOne(nextInterval(cron('0 0 * * *'), 'UTC', at('2025-06-01T00:00:00Z'), start))?.[0], '2026-01-01T00:00:00.000Z')
  })

  it('hourly in Europe/Berlin, from a start_date read in that zone', () => {
    const hourly = parseSchedule('@hourly', 'Europe/Berlin')
    assert.ok(hourly.ok)
    const start = parseDagDate('2026-06-01', 'Europe/Berlin')!
    assert.equal(start.toISOString(), '2026-05-31T22:00:00.000Z')
    const first = nextInterval(hourly.schedule, 'Europe/Berlin', undefined, start)
    assert.deepEqual(isoOne(first), ['2026-05-31T22:00:00.000Z', '2026-05-31T23:00:00.000Z'])
    assert.equal(formatDs(first!.start, 'Europe/Berlin'), '2026-06-01')
  })

  it('@once: a single interval [start_date, start_date]', () => {
    const start = at('2026-03-01T12:00:00Z')
    assert.deepEqual(isoOne(nextInterval(once, 'UTC', undefined, start)), ['2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00.000Z'])
    assert.deepEqual(isoOne(nextInterval(once, 'UTC', start, start))?.[0], '2026-03-01T12:00:00.000Z')
    assert.equal(nextInterval(once, 'UTC', at('2026-03-01T12:00:00.001Z'), start), undefined)
    assert.equal(nextInterval(once, 'UTC', undefined, start, at('2026-02-01T00:00:00Z')), undefined)
  })

  it('end_date: an interval may start on it (and end after it), none starts after it', () => {
    const start = at('2026-01-01T00:00:00Z')
    const end = at('2026-01-05T00:00:00Z')
    assert.deepEqual(isoOne(nextInterval(cron('0 0 * * *'), 'UTC', end, start, end)), [
      '2026-01-05T00:00:00.000Z',
      '2026-01-06T00:00:00.000Z',
    ])
    assert.equal(nextInterval(cron('0 0 * * *'), 'UTC', at('2026-01-05T00:00:00.001Z'), start, end), undefined)
    assert.equal(nextInterval(cron('0 0 * * *'), 'UTC', undefined, at('2026-02-01T00:00:00Z'), end), undefined)
  })
})

describe('dueIntervals', () => {
  it('an interval is due once its end has passed, not before', () => {
    assert.deepEqual(iso(dueIntervals(daily({ now: at('2026-01-01T23:59:59.999Z') }))), [])
    assert.deepEqual(iso(dueIntervals(daily({ now: at('2026-01-02T00:00:00Z') }))), [
      ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'],
    ])
    assert.deepEqual(iso(dueIntervals(daily({ now: at('2026-01-03T00:00:00Z') }))).length, 2)
    assert.deepEqual(dueIntervals(daily({ now: at('2025-12-01T00:00:00Z') })), [], 'now before start_date')
  })

  it('catchup all: every missed interval, oldest first, after the last logical date', () => {
    const all = dueIntervals(daily())
    assert.equal(all.length, 10)
    assert.equal(all[0]!.start.toISOString(), '2026-01-01T00:00:00.000Z')
    assert.equal(all[9]!.start.toISOString(), '2026-01-10T00:00:00.000Z')
    const after = dueIntervals(daily({ lastLogicalDate: at('2026-01-07T00:00:00Z') }))
    assert.deepEqual(after.map((i) => i.start.toISOString().slice(0, 10)), ['2026-01-08', '2026-01-09', '2026-01-10'])
    // A manual run's logical date between fire times: the interval that started before it is not re-run.
    const manual = dueIntervals(daily({ lastLogicalDate: at('2026-01-07T15:00:00Z') }))
    assert.deepEqual(manual.map((i) => i.start.toISOString().slice(0, 10)), ['2026-01-08', '2026-01-09', '2026-01-10'])
    assert.deepEqual(dueIntervals(daily({ lastLogicalDate: at('2026-01-10T00:00:00Z') })), [])
  })

  it('catchup all: at most `limit`, and repeating with the new last logical date continues the list', () => {
    assert.deepEqual(iso(dueIntervals(daily({ limit: 3 }))), iso(dueIntervals(daily()).slice(0, 3)))
    assert.deepEqual(dueIntervals(daily({ limit: 0 })), [])
    const sliced: Interval[] = []
    for (let round = 0; round < 20; round++) {
      const slice = dueIntervals(daily({ limit: 3, lastLogicalDate: sliced.at(-1)?.start }))
      if (slice.length === 0) break
      sliced.push(...slice)
    }
    assert.deepEqual(iso(sliced), iso(dueIntervals(daily())))
  })

  it('catchup latest: only the most recent due interval', () => {
    assert.deepEqual(iso(dueIntervals(daily({ catchup: 'latest' }))), [['2026-01-10T00:00:00.000Z', '2026-01-11T00:00:00.000Z']])
    assert.deepEqual(dueIntervals(daily({ catchup: 'latest', lastLogicalDate: at('2026-01-10T00:00:00Z') })), [])
    // After the scheduler was down from the 5th, only the last missed interval runs.
    assert.deepEqual(iso(dueIntervals(daily({ catchup: 'latest', lastLogicalDate: at('2026-01-04T00:00:00Z') }))), [
      ['2026-01-10T00:00:00.000Z', '2026-01-11T00:00:00.000Z'],
    ])
    assert.deepEqual(dueIntervals(daily({ catchup: 'latest', now: at('2026-01-01T12:00:00Z') })), [], 'nothing has ended yet')
  })

  it('catchup none: nothing that ended before the DAG was switched on, not even the latest', () => {
    const enabledAt = at('2026-01-11T05:00:00Z')
    assert.deepEqual(dueIntervals(daily({ catchup: 'none', enabledAt })), [], 'the 10th ended before enabling')
    // The interval in progress when the DAG was switched on is its first run, once it ends.
    assert.deepEqual(iso(dueIntervals(daily({ catchup: 'none', enabledAt, now: at('2026-01-12T00:00:00Z') }))), [
      ['2026-01-11T00:00:00.000Z', '2026-01-12T00:00:00.000Z'],
    ])
    // Switched on long ago, scheduler down since the 4th: like latest, only the last missed interval.
    const outage = { enabledAt: at('2026-01-01T00:00:00Z'), lastLogicalDate: at('2026-01-04T00:00:00Z') }
    assert.deepEqual(iso(dueIntervals(daily({ catchup: 'none', ...outage }))), iso(dueIntervals(daily({ catchup: 'latest', ...outage }))))
    // Without enabledAt the DAG counts as on since start_date.
    assert.deepEqual(iso(dueIntervals(daily({ catchup: 'none' }))), iso(dueIntervals(daily({ catchup: 'latest' }))))
  })

  it('end_date bounds every catchup mode', () => {
    const endDate = at('2026-01-04T12:00:00Z')
    assert.deepEqual(
      dueIntervals(daily({ endDate })).map((i) => i.start.toISOString().slice(0, 10)),
      ['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-04'],
    )
    assert.deepEqual(iso(dueIntervals(daily({ endDate, catchup: 'latest' }))), [['2026-01-04T00:00:00.000Z', '2026-01-05T00:00:00.000Z']])
    assert.deepEqual(dueIntervals(daily({ endDate, catchup: 'latest', lastLogicalDate: at('2026-01-04T00:00:00Z') })), [])
  })

  it('@once: due at start_date, once, in every mode that allows it', () => {
    const base = daily({ schedule: once, startDate: at('2026-03-01T12:00:00Z') })
    const S = '2026-03-01T12:00:00.000Z'
    for (const catchup of ['all', 'latest', 'none'] as const) {
      assert.deepEqual(dueIntervals({ ...base, catchup, now: at('2026-03-01T11:59:59Z') }), [], catchup)
      assert.deepEqual(iso(dueIntervals({ ...base, catchup, now: at('2026-03-01T12:00:00Z') })), [[S, S]], catchup)
      assert.deepEqual(dueIntervals({ ...base, catchup, now: at('2027-01-01T00:00:00Z'), lastLogicalDate: at(S) }), [], catchup)
      assert.deepEqual(dueIntervals({ ...base, catchup, now: at('2027-01-01T00:00:00Z'), endDate: at('2026-02-01T00:00:00Z') }), [], catchup)
    }
    const late = { ...base, now: at('2026-06-01T00:00:00Z'), enabledAt: at('2026-05-01T00:00:00Z') }
    assert.deepEqual(dueIntervals({ ...late, catchup: 'none' }), [], 'none: start_date passed before the DAG was switched on')
    assert.deepEqual(iso(dueIntervals({ ...late, catchup: 'latest' })), [[S, S]])
  })

  it('latest after ten years of missed minutes answers at once (searches backwards)', () => {
    const started = performance.now()
    const due = dueIntervals({
      schedule: cron('* * * * *'),
      timezone: 'Europe/Berlin',
      startDate: at('2026-01-01T00:00:00Z'),
      catchup: 'latest',
      lastLogicalDate: at('2026-01-01T00:05:00Z'),
      now: at('2036-01-01T00:00:30Z'),
      limit: 10,
    })
    assert.deepEqual(iso(due), [['2035-12-31T23:59:00.000Z', '2036-01-01T00:00:00.000Z']])
    assert.ok(performance.now() - started < 500)
  })
})

describe('intervalsBetween (backfill)', () => {
  it('every interval whose start is in [from, to], within start_date and end_date', () => {
    const got = intervalsBetween(cron('0 0 * * *'), 'UTC', at('2026-01-03T00:00:00Z'), at('2026-01-05T00:00:00Z'))
    assert.deepEqual(got.map((i) => i.start.toISOString().slice(0, 10)), ['2026-01-03', '2026-01-04', '2026-01-05'])
    assert.equal(got.at(-1)!.end.toISOString(), '2026-01-06T00:00:00.000Z')
    const bounded = intervalsBetween(
      cron('0 0 * * *'),
      'UTC',
      at('2025-12-01T00:00:00Z'),
      at('2026-02-01T00:00:00Z'),
      at('2026-01-30T00:00:00Z'),
      at('2026-01-31T06:00:00Z'),
    )
    assert.deepEqual(bounded.map((i) => i.start.toISOString().slice(0, 10)), ['2026-01-30', '2026-01-31'])
    assert.deepEqual(intervalsBetween(cron('0 0 * * *'), 'UTC', at('2026-01-03T00:00:01Z'), at('2026-01-03T23:59:00Z')), [])
  })

  it('@once: its interval when start_date is in range', () => {
    const S = at('2026-03-01T12:00:00Z')
    assert.equal(intervalsBetween(once, 'UTC', at('2026-03-01T00:00:00Z'), at('2026-03-02T00:00:00Z'), S).length, 1)
    assert.deepEqual(intervalsBetween(once, 'UTC', at('2026-03-02T00:00:00Z'), at('2026-03-03T00:00:00Z'), S), [])
    assert.deepEqual(intervalsBetween(once, 'UTC', at('2026-03-01T00:00:00Z'), at('2026-03-02T00:00:00Z')), [])
  })
})

describe('schedules that (almost) never fire end the search instead of looping', () => {
  it('0 0 30 2 * (refused by cron-parser) yields nothing, quickly', () => {
    const started = performance.now()
    const never = cron('0 0 30 2 *')
    const startDate = at('2026-01-01T00:00:00Z')
    assert.equal(nextInterval(never, 'UTC', undefined, startDate), undefined)
    for (const catchup of ['all', 'latest', 'none'] as const) {
      assert.deepEqual(dueIntervals(daily({ schedule: never, catchup, now: at('2036-01-01T00:00:00Z') })), [])
    }
    assert.deepEqual(intervalsBetween(never, 'Europe/Berlin', startDate, at('2036-01-01T00:00:00Z')), [])
    assert.ok(performance.now() - started < 200)
  })

  it('0 0 * 2 1#5 (the fifth Monday of February: 2044, 2072) stays bounded', () => {
    const started = performance.now()
    const rare = intervalsBetween(cron('0 0 * 2 1#5'), 'UTC', at('2026-01-01T00:00:00Z'), at('2100-01-01T00:00:00Z'))
    assert.deepEqual(rare.map((i) => i.start.toISOString().slice(0, 10)), ['2044-02-29', '2072-02-29'].slice(0, rare.length))
    assert.ok(rare.length >= 1)
    assert.ok(performance.now() - started < 2000)
  })
})

describe('DST policy', () => {
  it('spring forward: a skipped time fires once, at the end of the gap', () => {
    // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    assert.deepEqual(fires('30 2 * * *', 'Europe/Berlin', '2026-03-28T00:00:00Z', 3), [
      '2026-03-28 02:30 +01:00',
      '2026-03-29 03:00 +02:00',
      '2026-03-30 02:30 +02:00',
    ])
    // Several skipped times collapse into that one fire; 03:00 itself is not fired twice.
    assert.deepEqual(fires('0,30 2-3 * * *', 'Europe/Berlin', '2026-03-29T00:00:00Z', 3), [
      '2026-03-29 03:00 +02:00',
      '2026-03-29 03:30 +02:00',
      '2026-03-30 02:00 +02:00',
    ])
    assert.deepEqual(fires('*/15 * * * *', 'Europe/Berlin', '2026-03-29T00:45:00Z', 2), ['2026-03-29 01:45 +01:00', '2026-03-29 03:00 +02:00'])
    // America/New_York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    assert.deepEqual(fires('30 2 * * *', 'America/New_York', '2026-03-08T00:00:00Z', 2), ['2026-03-08 03:00 -04:00', '2026-03-09 02:30 -04:00'])
    // Australia/Lord_Howe, 2026-10-04: 02:00 +10:30 jumps to 02:30 +11:00 (a 30-minute shift).
    assert.deepEqual(fires('15 2 * * *', 'Australia/Lord_Howe', '2026-10-02T00:00:00Z', 3), [
      '2026-10-03 02:15 +10:30',
      '2026-10-04 02:30 +11:00',
      '2026-10-05 02:15 +11:00',
    ])
  })

  it('fall back: a repeated time fires once, at its first occurrence', () => {
    // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET.
    assert.deepEqual(fires('30 2 * * *', 'Europe/Berlin', '2026-10-24T00:00:00Z', 3), [
      '2026-10-24 02:30 +02:00',
      '2026-10-25 02:30 +02:00',
      '2026-10-26 02:30 +01:00',
    ])
    // Hourly: one two-hour interval that night, so every wall-clock hour is in exactly one interval.
    const hourly = intervalsBetween(cron('0 * * * *'), 'Europe/Berlin', at('2026-10-24T23:00:00Z'), at('2026-10-25T02:00:00Z'))
    assert.deepEqual(iso(hourly), [
      ['2026-10-24T23:00:00.000Z', '2026-10-25T00:00:00.000Z'],
      ['2026-10-25T00:00:00.000Z', '2026-10-25T02:00:00.000Z'],
      ['2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z'],
    ])
    // America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST.
    assert.deepEqual(fires('30 1 * * *', 'America/New_York', '2026-11-01T00:00:00Z', 2), ['2026-11-01 01:30 -04:00', '2026-11-02 01:30 -05:00'])
    // Australia/Lord_Howe, 2026-04-05: 02:00 +11:00 falls back to 01:30 +10:30 (cron-parser alone throws here).
    assert.deepEqual(fires('0 * * * *', 'Australia/Lord_Howe', '2026-04-04T13:30:00Z', 3), [
      '2026-04-05 01:00 +11:00',
      '2026-04-05 02:00 +10:30',
      '2026-04-05 03:00 +10:30',
    ])
  })

  it('a zone without DST at a half-hour offset: Asia/Kolkata', () => {
    const start = parseDagDate('2026-01-01', 'Asia/Kolkata')!
    const first = nextInterval(cron('0 0 * * *'), 'Asia/Kolkata', undefined, start)
    assert.deepEqual(isoOne(first), ['2025-12-31T18:30:00.000Z', '2026-01-01T18:30:00.000Z'])
    assert.equal(formatDs(first!.start, 'Asia/Kolkata'), '2026-01-01')
  })
})

describe('formatDs', () => {
  it('is the logical date in the DAG time zone', () => {
    const instant = at('2026-03-28T23:30:00Z')
    assert.equal(formatDs(instant, 'UTC'), '2026-03-28')
    assert.equal(formatDs(instant, 'Europe/Berlin'), '2026-03-29')
    assert.equal(formatDsNodash(instant, 'Europe/Berlin'), '20260329')
    assert.equal(formatDs(at('2026-01-01T03:00:00Z'), 'America/New_York'), '2025-12-31')
    assert.equal(formatDsNodash(at('2026-01-01T03:00:00Z'), 'America/New_York'), '20251231')
  })

  it('refuses a zone validation should have refused', () => {
    assert.throws(() => formatDs(at('2026-01-01T00:00:00Z'), 'Mars/Olympus'), RangeError)
  })
})

// ---------------------------------------------------------------------------------------------------
// Property tests: four zones, ten years (2026-2036), realistic expressions.

const ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'] as const
const DECADE_START = Date.UTC(2026, 0, 1)
const DECADE_END = Date.UTC(2036, 0, 1)

/** Offset changes of a zone in 2026-2036, found by probing daily and bisecting to the minute. */
function transitions(zone: string): number[] {
  const z = IANAZone.create(zone)
  const found: number[] = []
  for (let t = DECADE_START; t < DECADE_END; t += DAY) {
    if (z.offset(t) === z.offset(t + DAY)) continue
    let lo = t
    let hi = t + DAY
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE
      if (z.offset(mid) === z.offset(lo)) lo = mid
      else hi = mid
    }
    found.push(hi)
  }
  return found
}
const TRANSITIONS = new Map(ZONES.map((zone) => [zone, transitions(zone)]))

it('the zones under test change offset twice a year (Kolkata never)', () => {
  assert.equal(TRANSITIONS.get('Europe/Berlin')!.length, 20)
  assert.equal(TRANSITIONS.get('America/New_York')!.length, 20)
  assert.equal(TRANSITIONS.get('Australia/Lord_Howe')!.length, 20)
  assert.equal(TRANSITIONS.get('Asia/Kolkata')!.length, 0)
})

const minute = fc.oneof(fc.integer({ min: 0, max: 59 }), fc.constantFrom(0, 15, 30, 45))
const hour = fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 1, 2, 3)) // 1-3: where DST happens
/** A realistic expression and a span that holds at most a few hundred of its intervals. */
const expression = fc.oneof(
  fc.tuple(minute, hour).map(([m, h]) => ({ cron: `${m} ${h} * * *`, span: 400 * DAY })),
  fc.constant({ cron: '*/15 * * * *', span: 4 * DAY }),
  fc.tuple(minute, hour, fc.integer({ min: 0, max: 6 })).map(([m, h, d]) => ({ cron: `${m} ${h} * * ${d}`, span: 3 * 365 * DAY })),
  fc.tuple(minute, hour, fc.integer({ min: 1, max: 31 })).map(([m, h, d]) => ({ cron: `${m} ${h} ${d} * *`, span: 10 * 365 * DAY })),
  fc.constant({ cron: '0 */2 * * *', span: 30 * DAY }),
  fc.constant({ cron: '30 2 * * *', span: 400 * DAY }),
  minute.map((m) => ({ cron: `${m} * * * *`, span: 10 * DAY })),
  fc.constant({ cron: '*/30 1-3 * * *', span: 60 * DAY }),
)

/** In [0, 1], evenly (fc.double favours values near 0). */
const fraction = fc.integer({ min: 0, max: 1000 }).map((n) => n / 1000)

/** A random instant of the decade, or (half the time) one up to three days before a DST change. */
const instantIn = (zone: string) =>
  fc.oneof(
    fc.integer({ min: DECADE_START, max: DECADE_END }),
    fc
      .tuple(fc.nat(), fc.integer({ min: -3 * DAY, max: DAY }))
      .map(([index, shift]) => {
        const list = TRANSITIONS.get(zone as (typeof ZONES)[number])!
        return list.length === 0 ? DECADE_START + shift + 3 * DAY : list[index % list.length]! + shift
      }),
  )

const scenario = fc
  .constantFrom(...ZONES)
  .chain((zone) =>
    fc.record({
      zone: fc.constant(zone),
      expression,
      start: instantIn(zone),
      nowFraction: fc.oneof(fraction, fc.constant(1)),
      endFraction: fc.option(fraction, { nil: undefined, freq: 2 }),
      limit: fc.integer({ min: 1, max: 50 }),
    }),
  )
  .map(({ zone, expression, start, nowFraction, endFraction, limit }) => ({
    zone,
    schedule: cron(expression.cron),
    startDate: new Date(start),
    now: new Date(start + Math.floor(nowFraction * expression.span)),
    endDate: endFraction === undefined ? undefined : new Date(start + Math.floor(endFraction * expression.span)),
    limit,
  }))

type Scenario = { zone: string; schedule: Schedule; startDate: Date; now: Date; endDate: Date | undefined; limit: number }

const input = (s: Scenario, catchup: Catchup, over: Partial<DueIntervalsInput> = {}): DueIntervalsInput => ({
  schedule: s.schedule,
  timezone: s.zone,
  startDate: s.startDate,
  endDate: s.endDate,
  catchup,
  lastLogicalDate: undefined,
  now: s.now,
  limit: 100_000,
  ...over,
})

describe('properties over Berlin, New York, Lord Howe and Kolkata, 2026-2036', () => {
  it('intervals are strictly increasing, contiguous, unique, within start/end date, and due', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const all = dueIntervals(input(s, 'all'))
        const starts = new Set<number>()
        for (const [k, i] of all.entries()) {
          assert.ok(i.start < i.end, 'start < end')
          assert.ok(i.start >= s.startDate, 'start >= start_date')
          if (s.endDate) assert.ok(i.start <= s.endDate, 'start <= end_date')
          assert.ok(i.end <= s.now, 'due: end <= now')
          if (k > 0) assert.equal(i.start.getTime(), all[k - 1]!.end.getTime(), 'contiguous')
          starts.add(i.start.getTime())
        }
        assert.equal(starts.size, all.length, 'no two intervals share a start')
        // Nothing due was left out: the interval after the last one is not due (or does not exist).
        const following = nextInterval(s.schedule, s.zone, all.length ? new Date(all.at(-1)!.start.getTime() + 1) : undefined, s.startDate, s.endDate)
        if (following) assert.ok(following.end > s.now, 'the next interval is not due yet')
      }),
      { numRuns: 120 },
    )
  })

  it('catchup all in slices of `limit` gives the same list as all at once; latest and none agree with it', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 0, max: 3 * DAY }), (s, enabledShift) => {
        const all = dueIntervals(input(s, 'all'))
        const sliced: Interval[] = []
        for (let round = 0; round <= all.length; round++) {
          const slice = dueIntervals(input(s, 'all', { limit: s.limit, lastLogicalDate: sliced.at(-1)?.start }))
          assert.ok(slice.length <= s.limit)
          if (slice.length === 0) break
          sliced.push(...slice)
        }
        assert.deepEqual(iso(sliced), iso(all))
        assert.deepEqual(iso(dueIntervals(input(s, 'latest'))), iso(all.slice(-1)))
        const enabledAt = new Date(s.now.getTime() - enabledShift)
        const latestEndedWhileOn = all.slice(-1).filter((i) => i.end >= enabledAt)
        assert.deepEqual(iso(dueIntervals(input(s, 'none', { enabledAt }))), iso(latestEndedWhileOn))
      }),
      { numRuns: 60 },
    )
  })

  it('nextInterval, intervalsFrom and intervalsBetween walk the same intervals', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, pick) => {
        const all = dueIntervals(input(s, 'all'))
        if (all.length === 0) return
        const k = pick % all.length
        const chosen = all[k]!
        assert.deepEqual(isoOne(nextInterval(s.schedule, s.zone, chosen.start, s.startDate, s.endDate)), isoOne(chosen))
        assert.deepEqual(
          isoOne(nextInterval(s.schedule, s.zone, new Date(chosen.start.getTime() - 1), s.startDate, s.endDate)),
          isoOne(chosen),
        )
        if (k + 1 < all.length) {
          assert.deepEqual(isoOne(nextInterval(s.schedule, s.zone, new Date(chosen.start.getTime() + 1), s.startDate, s.endDate)), isoOne(all[k + 1]))
        }
        const between = intervalsBetween(s.schedule, s.zone, all[0]!.start, all.at(-1)!.start, s.startDate, s.endDate)
        assert.deepEqual(iso(between), iso(all))
        const lazily: Interval[] = []
        for (const next of intervalsFrom(s.schedule, s.zone, s.startDate, { startDate: s.startDate, endDate: s.endDate })) {
          if (lazily.length === all.length) break
          lazily.push(next)
        }
        assert.deepEqual(iso(lazily), iso(all))
      }),
      { numRuns: 60 },
    )
  })

  it('around every kind of DST change, fire times match a cron daemon that wakes every minute', () => {
    const dstZones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe'] as const
    fc.assert(
      fc.property(fc.constantFrom(...dstZones), fc.nat(), expression, (zone, index, { cron: expr }) => {
        const list = TRANSITIONS.get(zone)!
        const change = list[index % list.length]!
        const from = change - 36 * HOUR
        const to = change + 36 * HOUR
        const z = IANAZone.create(zone)
        const wall = (t: number) => t + z.offset(t) * MINUTE

        // Every matching wall-clock minute near the window (cron-parser, in UTC, only matches fields).
        const matching = new Set<number>()
        const fields = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: new Date(wall(from) - DAY) })
        for (let w = fields.next().getTime(); w <= wall(to) + DAY; w = fields.next().getTime()) matching.add(w)

        // The daemon: at each real minute, fire once if a matching wall minute was reached since the last wake-up.
        const expected: number[] = []
        let highest = wall(from)
        for (let t = from + MINUTE; t <= to; t += MINUTE) {
          const now = wall(t)
          let due = false
          for (let w = highest + MINUTE; w <= now; w += MINUTE) if (matching.has(w)) due = true
          if (due) expected.push(t)
          highest = Math.max(highest, now)
        }

        const actual: number[] = []
        for (const t of fireTimesAfter(expr, z, from)) {
          if (t > to) break
          actual.push(t)
        }
        assert.deepEqual(actual.map((t) => local(t, zone)), expected.map((t) => local(t, zone)))
      }),
      { numRuns: 60 },
    )
  })
})
