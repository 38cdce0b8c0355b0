/**
 * The shell text the ssh executor runs on a host: the rank wrapper and the status, kill and liveness
 * commands, each fixed text with every user value passed as a positional parameter, single-quoted
 * (shell-quote.ts), never spliced into the script. Pure: ssh.ts sends these over its channels.
 */
import path from 'node:path'
import { shellQuote, shellQuoteArgv } from './shell-quote.ts'

/**
 * The remote wrapper. $1 is the workdir, $2 the rank's status path (the exit status goes to `$2.PGID`), then
 * NAME=VALUE words up to `--`, then the program's argv.
 * `read` of the go line fails (exit 125) when the executor closes the channel instead: the program never ran.
 * The program writes into two FIFOs that relays (`tee`, SIGPIPE ignored) copy to the channel and append to
 * `$2.PGID.out`; a relay whose channel is gone (a worker that detached) goes on writing the file, so the
 * program never gets SIGPIPE and runs on, and its output is kept on the host.
 * A background list's stdin is /dev/null in a non-interactive shell, hence the watchdog reads a saved fd 3. It
 * stops the group when the channel's stdin ends, unless it read `detach` first (it answers `cairn-detached`).
 * The exit status is written to `$2.PGID` (one short write, by the group's last process), so a worker that
 * re-attaches after the ranks ended still learns how each ended.
 */
const WRAPPER = `wd=$1; status=$2.$$; shift 2
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do export "$1"; shift; done
shift
echo "cairn-pgid $$"
IFS= read -r go || exit 125
[ "$go" = go ] || exit 125
mkdir -p -- "$wd" "\${status%/*}" && cd -- "$wd" || exit 126
[ -e "$status" ] && rm -f -- "$status"
mkfifo -- "$status.o" "$status.e" 2>/dev/null || { rm -f -- "$status.o" "$status.e" && mkfifo -- "$status.o" "$status.e"; } || exit 126
( trap '' PIPE; exec tee -a -- "$status.out" ) <"$status.o" &
out=$!
( trap '' PIPE; exec tee -a -- "$status.out" >&2 ) <"$status.e" &
err=$!
exec 3<&0
"$@" </dev/null >"$status.o" 2>"$status.e" 3<&- &
child=$!
( trap '' TERM; while IFS= read -r line <&3; do [ "$line" = detach ] && { echo cairn-detached; exit 0; }; done; kill -TERM -$$ 2>/dev/null; sleep 5; kill -KILL -$$ 2>/dev/null ) </dev/null &
watchdog=$!
exec 3<&-
wait "$child"; code=$?
wait "$out" "$err"
kill -KILL "$watchdog" 2>/dev/null
rm -f -- "$status.o" "$status.e"
echo "$code" >"$status"
exit "$code"`

/** Prints, for each path in $@, the exit status written there, or `-` when there is none. */
const READ_STATUS = `for f in "$@"; do code=; [ -r "$f" ] && IFS= read -r code <"$f"; echo "\${code:--}"; done; exit 0`

/** $1: grace in tenths of a second, then pgids. TERM, KILL after the grace, exit 0 once every group is gone. */
/**
 * A group counts as alive while `kill -0 -PGID` succeeds and, where ps exists, one of its processes is not a
 * zombie: a host whose init does not reap orphans would otherwise keep dead ranks "alive" forever.
 */
const ALIVE_FUNCTION = `alive() {
  kill -0 -"$1" 2>/dev/null || return 1
  command -v ps >/dev/null 2>&1 || return 0
  ps -e -o pgid= -o stat= | awk -v pg="$1" '$1 == pg && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}`

/** $1: grace in tenths of a second, then pgids. TERM, KILL after the grace, exit 0 once every group is gone. */
const KILL_GROUPS = `${ALIVE_FUNCTION}
grace=$1; shift
for pg in "$@"; do kill -TERM -"$pg" 2>/dev/null; done
i=0
while :; do
  left=
  for pg in "$@"; do alive "$pg" && left="$left $pg"; done
  [ -z "$left" ] && exit 0
  i=$((i + 1))
  [ "$i" -eq "$grace" ] && for pg in $left; do kill -KILL -"$pg" 2>/dev/null; done
  if [ "$i" -gt $((grace + 100)) ]; then echo "still alive:$left"; exit 1; fi
  sleep 0.1
done`

/** Prints the pgids (of $@) that still have a process. */
const ALIVE_GROUPS = `${ALIVE_FUNCTION}
for pg in "$@"; do alive "$pg" && echo "$pg"; done; exit 0`

/**
 * $1: a rank's output file (`$2.PGID.out` of the wrapper), $2: its group's pgid, whose leader is the wrapper.
 * Prints the file from its first line and follows it until the wrapper has exited (GNU tail's --pid), so a
 * worker that re-attaches streams the rank's output as the one that started it did.
 */
const FOLLOW_OUTPUT = `exec tail -n +1 -F --pid="$2" -- "$1" 2>/dev/null`

/** The command line one rank's channel runs (exported for tests of the quoting). */
export function rankCommand(workdir: string, env: Readonly<Record<string, string>>, argv: readonly string[], status = statusPath(workdir, 0)): string {
  const words = ['cairn-rank', workdir, status, ...Object.entries(env).map(([name, value]) => `${name}=${value}`), '--', ...argv]
  return `exec setsid -w sh -c ${shellQuote(WRAPPER)} ${shellQuoteArgv(words)}`
}

/** Where rank `rank` writes its exit status (the wrapper appends `.PGID`): inside the workdir, beside the job's files. */
export function statusPath(workdir: string, rank: number): string {
  return path.posix.join(workdir, '.cairn-ranks', `rank-${rank}`)
}

export function readStatusCommand(files: readonly string[]): string {
  return `sh -c ${shellQuote(READ_STATUS)} cairn-status ${shellQuoteArgv(files)}`
}

export function killCommand(graceMs: number, pgids: readonly number[]): string {
  return `sh -c ${shellQuote(KILL_GROUPS)} cairn-kill ${shellQuoteArgv([String(Math.max(1, Math.round(graceMs / 100))), ...pgids.map(String)])}`
}

export function aliveCommand(pgids: readonly number[]): string {
  return `sh -c ${shellQuote(ALIVE_GROUPS)} cairn-alive ${shellQuoteArgv(pgids.map(String))}`
}

export function followOutputCommand(outputFile: string, pgid: number): string {
  return `sh -c ${shellQuote(FOLLOW_OUTPUT)} cairn-follow ${shellQuoteArgv([outputFile, String(pgid)])}`
}
