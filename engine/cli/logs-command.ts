/**
 * `cairn logs RUN_ID TASK [--attempt N] [--follow] [--format json]`
 *
 * Prints the stored lines of one attempt (default: the latest), every stream on stdout in the order
 * they were written. `--follow` keeps printing new lines — woken by LISTEN `cairn_log`, with a 1 s poll
 * as the fallback — until the task instance ends; without `--attempt` it moves on to each retry's
 * attempt (announced on stderr), with `--attempt N` it stops when that attempt ends.
 */
import { parseArgs } from 'node:util'
import type { Db } from '../store/db.ts'
import { getRun } from '../store/runs.ts'
import { readLogs } from '../store/logs.ts'
import type { LogLine } from '../store/logs.ts'
import { getAttemptState, getTaskInstanceStatus, isAttemptOver } from '../store/run-queries.ts'
import { isTerminalTaskState } from '../state/states.ts'
import { EXIT } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import type { OutputFormat } from './format.ts'
import { parsePositiveInt, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { logLineJson } from '../json-shapes.ts'
import { listenOrPoll } from './wake.ts'
import { createWaker } from '../runtime/waker.ts'

const POLL_MS = 1000
const PAGE = 5000

export const LOGS_HELP = `Prints the log lines of one attempt of TASK in RUN_ID (default: the latest attempt).
  --attempt N     that attempt instead of the latest
  --follow        keep printing new lines until the task instance ends (with --attempt: until that attempt ends)
  --format json   one JSON object per line: {"attempt","stream","line","at"}
Exit codes: 0 printed (with --follow: the task ended success or skipped); 1 unknown run, task or
attempt, or with --follow the task ended failed, upstream_failed or cancelled; 2 malformed arguments or no database.`

export async function logsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { attempt: { type: 'string' }, follow: { type: 'boolean', default: false }, format: { type: 'string' } } })
  const [runId, taskId] = takePositionals(positionals, ['RUN_ID', 'TASK'])
  const format = formatOption(values.format)
  const fixedAttempt = parsePositiveInt('--attempt', values.attempt)
  const fail = (message: string): ExitCode => {
    io.stderr(`cairn logs: ${message}`)
    return EXIT.failed
  }

  return withDatabase(io, async (db) => {
    if (!(await getRun(db, runId!))) return fail(`no run "${runId}"`)
    const status = await getTaskInstanceStatus(db, runId!, taskId!)
    if (!status) return fail(`run ${runId} has no task "${taskId}"`)
    if (fixedAttempt !== undefined && fixedAttempt > status.attempt) {
      return fail(`task ${taskId} of run ${runId} has no attempt ${fixedAttempt} (${status.attempt === 0 ? 'it has not started yet' : `its latest is ${status.attempt}`})`)
    }
    const target = { runId: runId!, taskId: taskId! }
    const print = printer(io, format)
    if (!values.follow) {
      const attempt = fixedAttempt ?? status.attempt
      if (attempt === 0) io.stderr(`cairn logs: task ${taskId} has not started yet (${status.state})`)
      else await printFrom(db, { ...target, attempt }, 0, print)
      return EXIT.ok
    }
    return follow(db, io, target, fixedAttempt, print)
  })
}

type Print = (attempt: number, line: LogLine) => void

function printer(io: CommandIo, format: OutputFormat): Print {
  return format === 'json' ? (attempt, line) => io.stdout(JSON.stringify(logLineJson(attempt, line))) : (_attempt, line) => io.stdout(line.line)
}

/** Prints every line after `afterId`; returns the id of the last line printed. */
async function printFrom(db: Db, at: { runId: string; taskId: string; attempt: number }, afterId: number, print: Print): Promise<number> {
  let last = afterId
  for (;;) {
    const lines = await readLogs(db, at, last, PAGE)
    for (const line of lines) print(at.attempt, line)
    if (lines.length > 0) last = lines[lines.length - 1]!.id
    if (lines.length < PAGE) return last
  }
}

/**
 * The state is read before the lines: the worker stores an attempt's last lines before it records
 * the attempt's end, so once the state says "ended", one more read has every line.
 */
async function follow(db: Db, io: CommandIo, target: { runId: string; taskId: string }, fixedAttempt: number | undefined, print: Print): Promise<ExitCode> {
  const waker = createWaker()
  const unlisten = await listenOrPoll(
    db,
    'cairn_log',
    (payload) => {
      const [run, task] = payload.split('\t')
      if (run === target.runId && task === target.taskId) waker.wake()
    },
    () => waker.wake(),
  )
  try {
    let attempt = fixedAttempt ?? 0
    let afterId = 0
    for (;;) {
      const status = await getTaskInstanceStatus(db, target.runId, target.taskId)
      if (!status) throw new Error(`task ${target.taskId} of run ${target.runId} disappeared while following it`)
      if (fixedAttempt === undefined && status.attempt > attempt) {
        if (attempt > 0) await printFrom(db, { ...target, attempt }, afterId, print)
        attempt = status.attempt
        afterId = 0
        if (attempt > 1) io.stderr(`cairn logs: attempt ${attempt}`)
      }
      let ended: string | undefined
      if (fixedAttempt !== undefined) {
        const state = (await getAttemptState(db, { ...target, attempt })) ?? 'lost'
        if (isAttemptOver(state)) ended = state
      } else if (isTerminalTaskState(status.state)) ended = status.state
      if (attempt > 0) afterId = await printFrom(db, { ...target, attempt }, afterId, print)
      if (ended !== undefined) {
        io.stderr(`cairn logs: task ${target.taskId}${fixedAttempt === undefined ? '' : ` attempt ${attempt}`} ended ${ended}`)
        return ended === 'success' || ended === 'skipped' ? EXIT.ok : EXIT.failed
      }
      await waker.sleep(POLL_MS)
    }
  } finally {
    await unlisten()
  }
}
