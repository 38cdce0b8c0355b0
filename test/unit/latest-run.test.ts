/**
 * `run.is_latest`: a run is the latest when the interval after its own has not ended yet. Expected
 * values are worked out by hand from the calendar, not from the interval code.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isLatestRun } from '../../engine/worker/latest-run.ts'

const daily = { schedule: '0 2 * * *', timezone: 'Europe/Berlin' }
const at = (iso: string): Date => new Date(iso)

describe('run.is_latest', () => {
  it('a scheduled run is the latest until the next interval ends', () => {
    // Interval [Nov 29 02:00, Nov 30 02:00) Berlin = [Nov 29 01:00Z, Nov 30 01:00Z); the next ends Dec 1 01:00Z.
    const claim = { runType: 'scheduled' as const, dataIntervalEnd: at('2026-11-30T01:00:00Z') }
    assert.equal(isLatestRun(daily, claim, at('2026-11-30T01:00:01Z')), true)
    assert.equal(isLatestRun(daily, claim, at('2026-12-01T00:59:59Z')), true)
    assert.equal(isLatestRun(daily, claim, at('2026-12-01T01:00:00Z')), false)
    assert.equal(isLatestRun(daily, claim, at('2026-12-20T12:00:00Z')), false)
  })

  it('older intervals of a catchup and backfill runs are not the latest; manual runs always are', () => {
    const old = { dataIntervalEnd: at('2026-09-02T00:00:00Z') }
    assert.equal(isLatestRun(daily, { ...old, runType: 'scheduled' }, at('2026-12-01T20:00:00Z')), false)
    assert.equal(isLatestRun(daily, { ...old, runType: 'backfill' }, at('2026-12-01T20:00:00Z')), false)
    assert.equal(isLatestRun(daily, { ...old, runType: 'manual' }, at('2026-12-01T20:00:00Z')), true)
    assert.equal(isLatestRun({ timezone: 'UTC' }, { ...old, runType: 'scheduled' }, at('2026-12-01T20:00:00Z')), true)
  })

  it('past end_date there is no next interval, so the last one stays the latest', () => {
    const ended = { ...daily, endDate: '2026-09-01T02:00:00' }
    // end_date is 02:00 Berlin on Sep 1: the last interval starts then (00:00Z) and ends Sep 2 00:00Z.
    const last = { runType: 'scheduled' as const, dataIntervalEnd: at('2026-09-02T00:00:00Z') }
    assert.equal(isLatestRun(ended, last, at('2026-12-01T20:00:00Z')), true)
    const before = { runType: 'scheduled' as const, dataIntervalEnd: at('2026-09-01T00:00:00Z') }
    assert.equal(isLatestRun(ended, before, at('2026-12-01T20:00:00Z')), false)
  })

  it('a weekly schedule across the October DST change', () => {
    // Mondays 03:00 Berlin: Oct 19 (CEST, 01:00Z) -> Oct 26 (CET, 02:00Z) -> Nov 2 (02:00Z).
    const weekly = { schedule: '0 3 * * 1', timezone: 'Europe/Berlin' }
    const claim = { runType: 'scheduled' as const, dataIntervalEnd: at('2026-10-26T02:00:00Z') }
    assert.equal(isLatestRun(weekly, claim, at('2026-11-02T01:59:59Z')), true)
    assert.equal(isLatestRun(weekly, claim, at('2026-11-02T02:00:00Z')), false)
  })
})
