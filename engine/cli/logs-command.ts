/**
 * `cairn logs RUN_ID TASK [--attempt N] [--tail N|all] [--follow] [--format json]`
 *
 * Prints the stored lines of one attempt (default: the latest), every stream on stdout in the order
 * they were written; `--tail N` only the last N. `--follow` starts at the last 1000 lines (or
 * `--tail`) and keeps printing new lines — woken by LISTEN `cairn_log`, with a 1 s poll as the
 * fallback — until the task instance ends; without `--attempt` it moves on to each retry's attempt
 * (announced on stderr), with `--attempt N` it stops when that attempt ends.
 *
 * On a terminal, control characters in task output are printed as escapes (see terminal-escape.ts).
 */
import { parseArgs } from 'node:util'
import type { Db } from '../store/db.ts'
import { getRun } from '../store/runs.ts'
import { readLogs, readLogsBefore } from '../store/logs.ts'
import type { AttemptKey, LogLine } from '../store/logs.ts'
import { getAttemptState, getTaskInstanceStatus, isAttemptOver } from '../store/run-queries.ts'
import { isTerminalTaskState } from '../state/states.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { formatOption } from './format.ts'
import type { OutputFormat } from './format.ts'
import { parsePositiveInt, takePositionals } from './args.ts'
import { withDatabase } from './database.ts'
import { logLineJson } from '../json-shapes.ts'
import { listenOrPoll } from './wake.ts'
import { createWaker } from '../runtime/waker.ts'
import { escapeControls, escapeJsonControls } from './terminal-escape.ts'

const POLL_MS = 1000
const PAGE = 5000
const FOLLOW_TAIL = 1000

export const LOGS_HELP = `Prints the log lines of one attempt of TASK in RUN_ID (default: the latest attempt).
  --attempt N     that attempt instead of the latest
  --tail N|all    only the last N lines (with --follow: start with them; default ${FOLLOW_TAIL}, all: every line)
  --follow        keep printing new lines until the task instance ends (with --attempt: until that attempt ends)
  --format json   one JSON object per line: {"attempt","stream","line","at"} ("dropped" on a line standing for lines the log cap left out)
On a terminal, control characters in the output (escape sequences, CR, ...) are shown as \\x1b, \\r, ...;
piped or redirected, lines are printed as stored.
Exit codes: 0 printed (with --follow: the task ended success or skipped); 1 unknown run, task or
attempt, or with --follow the task ended failed, upstream_failed or cancelled; 2 malformed arguments or no database.`

export async function logsCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { attempt: { type: 'string' }, tail: { type: 'string' }, follow: { type: 'boolean', default: false }, format: { type: 'string' } } })
  const [runId, taskId] = takePositionals(positionals, ['RUN_ID', 'TASK'])
  const format = formatOption(values.format)
  const fixedAttempt = parsePositiveInt('--attempt', values.attempt)
  const tail = parseTail(values.tail)
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
      else if (tail === 'all' || tail === undefined) await printFrom(db, { ...target, attempt }, 0, print)
      else await printTail(db, io, { ...target, attempt }, tail, print)
      return EXIT.ok
    }
    return follow(db, io, target, fixedAttempt, tail ?? FOLLOW_TAIL, print)
  })
}

function parseTail(text: string | undefined): number | 'all' | undefined {
  if (text === undefined || text === 'all') return text
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--tail must be a whole number or "all", not "${text}"`)
  return Number(text)
}

type Print = (attempt: number, line: LogLine) => void

/** Plain lines, or JSON lines; on a terminal with control characters escaped. */
export function printer(io: Pick<CommandIo, 'stdout' | 'stdoutIsTTY'>, format: OutputFormat): Print {
  const tty = io.stdoutIsTTY === true
  if (format === 'json') {
    return (attempt, line) => {
      const text = JSON.stringify({ ...logLineJson(attempt, line), ...(line.dropped ? { dropped: line.dropped } : {}) })
      io.stdout(tty ? escapeJsonControls(text) : text)
    }
  }
  return tty ? (_attempt, line) => io.stdout(escapeControls(line.line)) : (_attempt, line) => io.stdout(line.line)
}

/** Prints every line after `afterId`; returns the id of the last line printed. */
async function printFrom(db: Db, at: AttemptKey, afterId: number, print: Print): Promise<number> {
  let last = afterId
  for (;;) {
    const lines = await readLogs(db, at, last, PAGE)
    for (const line of lines) print(at.attempt, line)
    if (lines.length > 0) last = lines[lines.length - 1]!.id
    if (lines.length < PAGE) return last
  }
}

/** Prints the last `count` lines ('all': every line); returns the id of the last line stored. */
async function printTail(db: Db, io: CommandIo, at: AttemptKey, count: number | 'all', print: Print): Promise<number> {
  if (count === 'all') return printFrom(db, at, 0, print)
  const { lines, earlier } = await readLogsBefore(db, at, undefined, Math.max(count, 1))
  const shown = count === 0 ? [] : lines
  if (earlier || shown.length < lines.length) io.stderr(`cairn logs: earlier lines of attempt ${at.attempt} not shown (--tail all shows every line)`)
  for (const line of shown) print(at.attempt, line)
  return lines.at(-1)?.id ?? 0
}

/**
 * The state is read before the lines: the worker stores an attempt's last lines before it records
 * the attempt's end, so once the state says "ended", one more read has every line.
 */
async function follow(db: Db, io: CommandIo, target: { runId: string; taskId: string }, fixedAttempt: number | undefined, tail: number | 'all', print: Print): Promise<ExitCode> {
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
    let attempt = 0
    let afterId = 0
    let started = false
    for (;;) {
      const status = await getTaskInstanceStatus(db, target.runId, target.taskId)
      if (!status) throw new Error(`task ${target.taskId} of run ${target.runId} disappeared while following it`)
      const current = fixedAttempt ?? status.attempt
      if (current > 0 && (!started || current > attempt)) {
        if (started) {
          // A retry started: the rest of the previous attempt, then the new one from its first line.
          await printFrom(db, { ...target, attempt }, afterId, print)
          attempt = current
          afterId = 0
          io.stderr(`cairn logs: attempt ${attempt}`)
        } else {
          attempt = current
          if (fixedAttempt === undefined && attempt > 1) io.stderr(`cairn logs: attempt ${attempt}`)
          afterId = await printTail(db, io, { ...target, attempt }, tail, print)
          started = true
        }
      }
      let ended: string | undefined
      if (fixedAttempt !== undefined) {
        const state = (await getAttemptState(db, { ...target, attempt })) ?? 'lost'
        if (isAttemptOver(state)) ended = state
      } else if (isTerminalTaskState(status.state)) ended = status.state
      if (started) afterId = await printFrom(db, { ...target, attempt }, afterId, print)
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
