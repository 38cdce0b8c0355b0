/**
 * `cairn cancel RUN_ID`, `cairn clear RUN_ID [TASK]`, `cairn pause DAG`, `cairn unpause DAG`.
 * Each is one transaction that also wakes the schedulers (and, for cancel, the workers). Unknown run
 * or DAG, or a clear the run's state does not allow: exit 1 with the reason.
 */
import { parseArgs } from 'node:util'
import { cancelRun, clearRun } from '../store/control.ts'
import { setPaused } from '../store/dags.ts'
import { getRun } from '../store/runs.ts'
import { isTerminalRunState } from '../state/states.ts'
import { EXIT } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { takePositionals } from './args.ts'
import { withDatabase } from './database.ts'

export const CANCEL_HELP = `Cancels a queued or running run: its unfinished task instances become cancelled and the workers stop
their processes. A run that has already ended is left as it is.
Exit codes: 0 cancelled, or already ended; 1 unknown run; 2 malformed arguments or no database.`

export async function cancelCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const [runId] = takePositionals(positionals, ['RUN_ID'])
  return withDatabase(io, async (db) => {
    const outcome = await db.tx(async (q) => {
      // cancelRun reports an already-cancelled run like a fresh cancel; the state before tells them apart.
      const before = await getRun(q, runId!, true)
      if (!before) return undefined
      await cancelRun(q, runId!, new Date())
      return before.state
    })
    if (outcome === undefined) {
      io.stderr(`cairn cancel: no run "${runId}"`)
      return EXIT.failed
    }
    if (isTerminalRunState(outcome)) io.stdout(`run ${runId} had already ended (${outcome}); nothing to cancel`)
    else io.stdout(`cancelled run ${runId} (was ${outcome})`)
    return EXIT.ok
  })
}

export const CLEAR_HELP = `Makes a finished run run again. Without TASK: every task instance that did not succeed; with TASK: that
task and everything downstream of it. The run is queued again and waits for a max_active_runs slot.
Exit codes: 0 cleared; 1 unknown run or task, or the run is still queued or running; 2 malformed arguments or no database.`

export async function clearCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const [runId, taskId] = takePositionals(positionals, ['RUN_ID'], ['TASK'])
  return withDatabase(io, async (db) => {
    const result = await db.tx((q) => clearRun(q, runId!, taskId))
    if (!result.ok) {
      io.stderr(`cairn clear: ${result.message}`)
      return EXIT.failed
    }
    const n = result.cleared.length
    if (n === 0) {
      io.stdout(`nothing to clear: every task instance of run ${runId} succeeded (name a TASK to run it and its downstream again)`)
      return EXIT.ok
    }
    io.stdout(`cleared ${n} task instance${n === 1 ? '' : 's'} of run ${runId}: ${result.cleared.join(', ')}; the run is queued again`)
    return EXIT.ok
  })
}

export const PAUSE_HELP = `Pauses DAG: its schedule creates no new runs. Runs already queued or running carry on, and manual
triggers still run. Exit codes: 0 paused (also when it already was); 1 unknown DAG; 2 malformed arguments or no database.`
export const UNPAUSE_HELP = `Unpauses DAG: its schedule creates runs again (catchup decides which missed intervals run).
Exit codes: 0 unpaused (also when it was not paused); 1 unknown DAG; 2 malformed arguments or no database.`

export const pauseCommand = (args: string[], io: CommandIo): Promise<ExitCode> => setPausedCommand(args, io, true)
export const unpauseCommand = (args: string[], io: CommandIo): Promise<ExitCode> => setPausedCommand(args, io, false)

async function setPausedCommand(args: string[], io: CommandIo, paused: boolean): Promise<ExitCode> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} })
  const [dagId] = takePositionals(positionals, ['DAG'])
  return withDatabase(io, async (db) => {
    const found = await db.tx(async (q) => {
      const changed = await setPaused(q, dagId!, paused)
      // An unpaused DAG may have intervals due right now; the scheduler should not wait for its next pass.
      if (changed) await q.query('SELECT pg_notify($1, $2)', ['cairn_wake', dagId])
      return changed
    })
    if (!found) {
      io.stderr(`cairn ${paused ? 'pause' : 'unpause'}: no DAG "${dagId}"`)
      return EXIT.failed
    }
    io.stdout(`${paused ? 'paused' : 'unpaused'} DAG ${dagId}`)
    return EXIT.ok
  })
}
