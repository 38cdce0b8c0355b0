import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { watchStopSignals, withinTime } from '../../engine/cli/shutdown.ts'

test('first signal requests a stop, a second one (not a forwarded repeat) is urgent, a third forces', async () => {
  const events: string[] = []
  const signals = watchStopSignals({ onUrgent: () => events.push('urgent'), onForce: () => events.push('force'), repeatMs: 200 })
  try {
    assert.equal(signals.stopping, false)
    process.emit('SIGINT', 'SIGINT')
    await signals.requested
    assert.equal(signals.stopping, true)
    // npm forwards the terminal's Ctrl-C: the same signal again at once is the same Ctrl-C.
    process.emit('SIGINT', 'SIGINT')
    assert.equal(signals.urgent.aborted, false)
    assert.deepEqual(events, [])
    // Another signal counts at once; the same one once the window has passed.
    process.emit('SIGTERM', 'SIGTERM')
    assert.equal(signals.urgent.aborted, true)
    assert.deepEqual(events, ['urgent'])
    await sleep(250)
    process.emit('SIGTERM', 'SIGTERM')
    assert.deepEqual(events, ['urgent', 'force'])
  } finally {
    signals.dispose()
  }
  assert.equal(process.listenerCount('SIGINT'), 0)
  assert.equal(process.listenerCount('SIGTERM'), 0)
})

test('withinTime says whether a step finished in time', async () => {
  assert.equal(await withinTime(1000, () => sleep(10)), true)
  assert.equal(await withinTime(20, () => new Promise(() => {})), false)
})
