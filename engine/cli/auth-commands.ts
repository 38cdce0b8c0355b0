/**
 * `cairn users create|list|disable|enable` and `cairn tokens create|list|revoke`: who may use the web
 * API (SPEC sections 5 and 6).
 *
 * The password never goes on the command line (it would sit in shell history and `ps`): it is read
 * from stdin when stdin is not a terminal (or with --password-stdin), else asked for twice without echo.
 * A token is printed once, alone on the last line of stdout, so `TOKEN=$(cairn tokens create ...)` works;
 * only its SHA-256 digest is stored, and no listing ever shows it.
 */
import { parseArgs } from 'node:util'
import { parseDuration } from '../time/duration.ts'
import { passwordProblem } from '../web/auth/passwords.ts'
import { ROLES, isValidName } from '../web/auth/roles.ts'
import { createToken, listTokens, revokeToken, tokenState } from '../web/auth/tokens.ts'
import { createUser, getUser, listUsers, setUserDisabled } from '../web/auth/users.ts'
import { tokenJson, userJson } from '../web/json.ts'
import { EXIT, UsageError } from './io.ts'
import type { CommandIo, ExitCode } from './io.ts'
import { parseChoice, takePositionals } from './args.ts'
import { formatOption } from './format.ts'
import { withDatabase } from './database.ts'
import { formatTable, formatTime } from './table.ts'

export const USERS_HELP = `Manages the users of the web page and API.
  cairn users create NAME --role R   creates a user; R is ${ROLES.join(', ')} (viewer reads; operator also
                                     triggers, cancels, clears and pauses; admin also manages users and tokens)
      --password-stdin               read the password from stdin (also the default when stdin is not a terminal):
                                     one line, optionally the same line again; otherwise it is asked for twice, without echo
  cairn users list [--format json]   lists users and their roles
  cairn users disable NAME           the user can no longer log in; their sessions and the tokens they own
                                     stop working at once (open log and event streams end too)
  cairn users enable NAME            lets a disabled user log in again
Names: letters, digits and _ . @ -, at most 64. Passwords: at least 8 characters and not guessable
(common passwords, words, names, keyboard patterns and small variations of them are refused).
Exit codes: 0 done; 1 the name is taken, or no such user; 2 malformed arguments, a weak password, or no database.`

export const TOKENS_HELP = `Manages API tokens for scripts: send one as "Authorization: Bearer <token>".
  cairn tokens create NAME --role R [--expires 90d] [--owner USER]   R is ${ROLES.join(', ')}; --expires takes a
                                     duration (30m, 12h, 90d, 1d12h); without it the token never expires.
                                     --owner: the token belongs to that web user and stops when the user is disabled
  cairn tokens list [--all] [--format json]   name, role, state, created, expires, last used (recorded at most
                                     once a minute); --all also shows revoked tokens. Never the token itself.
  cairn tokens revoke NAME           the token stops working at once (open log and event streams end too)
The token is printed once, as the last line of stdout; cairn keeps only its SHA-256 digest.
A revoked token's name can be used again.
Exit codes: 0 done; 1 the name is taken, or no such token; 2 malformed arguments or no database.`

/** Where a password comes from; injected so tests need no terminal. */
export interface PasswordInput {
  isTTY: boolean
  /** All of stdin. */
  readAll(): Promise<string>
  /** Asks on the terminal without echoing what is typed. */
  askHidden(prompt: string): Promise<string>
}

export async function usersCommand(args: string[], io: CommandIo, input: PasswordInput = processInput()): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { role: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false }, format: { type: 'string' } } })
  const [action, ...rest] = positionals
  if (action === 'list') {
    takePositionals(rest, [])
    const format = formatOption(values.format)
    return withDatabase(io, async (db) => {
      const users = await listUsers(db)
      if (format === 'json') io.stdout(JSON.stringify(users.map(userJson)))
      else if (users.length === 0) io.stderr('cairn users: no users yet; create one with: npx cairn users create admin --role admin')
      else for (const line of formatTable(['USER', 'ROLE', 'DISABLED', 'CREATED'], users.map((u) => [u.username, u.role, u.disabled ? 'yes' : 'no', formatTime(u.createdAt)]))) io.stdout(line)
      return EXIT.ok
    })
  }
  if (action === 'disable' || action === 'enable') {
    const [name] = takePositionals(rest, ['NAME'])
    requireValidName('user name', name!)
    return withDatabase(io, async (db) => {
      if (!(await setUserDisabled(db, name!, action === 'disable'))) {
        io.stderr(`cairn users: no user "${name}"`)
        return EXIT.failed
      }
      io.stdout(action === 'disable' ? `disabled user ${name}: their sessions and tokens no longer work` : `enabled user ${name}`)
      return EXIT.ok
    })
  }
  if (action !== 'create') throw new UsageError(action === undefined ? 'missing action: create, list, disable or enable' : `unknown action "${action}": use create, list, disable or enable`)
  const [name] = takePositionals(rest, ['NAME'])
  const role = requiredRole(values.role)
  requireValidName('user name', name!)
  const password = await readPassword(input, name!, values['password-stdin'])
  const problem = passwordProblem(password, name)
  if (problem) throw new UsageError(problem)
  return withDatabase(io, async (db) => {
    const user = await createUser(db, { username: name!, role, password })
    if (!user) {
      io.stderr(`cairn users: user "${name}" already exists`)
      return EXIT.failed
    }
    io.stdout(`created user ${user.username} (role ${user.role})`)
    return EXIT.ok
  })
}

export async function tokensCommand(args: string[], io: CommandIo): Promise<ExitCode> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { role: { type: 'string' }, expires: { type: 'string' }, owner: { type: 'string' }, all: { type: 'boolean', default: false }, format: { type: 'string' } } })
  const [action, ...rest] = positionals
  if (action === 'list') {
    takePositionals(rest, [])
    const format = formatOption(values.format)
    return withDatabase(io, async (db) => {
      const tokens = await listTokens(db, { all: values.all })
      const now = new Date()
      if (format === 'json') io.stdout(JSON.stringify(tokens.map((t) => tokenJson(t, now))))
      else if (tokens.length === 0) io.stderr('cairn tokens: no tokens; create one with: npx cairn tokens create NAME --role R')
      else {
        const rows = tokens.map((t) => [t.name, t.role, tokenState(t, now), formatTime(t.createdAt), t.expiresAt ? formatTime(t.expiresAt) : 'never', t.lastUsedAt ? formatTime(t.lastUsedAt) : 'never'])
        for (const line of formatTable(['TOKEN', 'ROLE', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED'], rows)) io.stdout(line)
      }
      return EXIT.ok
    })
  }
  if (action === 'revoke') {
    const [name] = takePositionals(rest, ['NAME'])
    requireValidName('token name', name!)
    return withDatabase(io, async (db) => {
      if (!(await revokeToken(db, name!))) {
        io.stderr(`cairn tokens: no live token named "${name}"`)
        return EXIT.failed
      }
      io.stdout(`revoked token ${name}`)
      return EXIT.ok
    })
  }
  if (action !== 'create') throw new UsageError(action === undefined ? 'missing action: create, list or revoke' : `unknown action "${action}": use create, list or revoke`)
  const [name] = takePositionals(rest, ['NAME'])
  const role = requiredRole(values.role)
  requireValidName('token name', name!)
  const expiresInMs = values.expires === undefined ? undefined : requiredDuration('--expires', values.expires)
  const owner = values.owner
  if (owner !== undefined) requireValidName('--owner', owner)
  return withDatabase(io, async (db) => {
    if (owner !== undefined && !(await getUser(db, owner))) {
      io.stderr(`cairn tokens: no user "${owner}" to own the token`)
      return EXIT.failed
    }
    const created = await createToken(db, { name: name!, role, createdBy: 'cli', owner: owner ?? null, ...(expiresInMs === undefined ? {} : { expiresInMs }) })
    if (!created) {
      io.stderr(`cairn tokens: a token named "${name}" already exists`)
      return EXIT.failed
    }
    const until = created.row.expiresAt ? `, expires ${created.row.expiresAt.toISOString()}` : ''
    io.stderr(`cairn tokens: created token ${name} (role ${role}${until}); it is shown only now, keep it somewhere safe:`)
    io.stdout(created.token)
    return EXIT.ok
  })
}

function requiredDuration(option: string, text: string): number {
  const ms = parseDuration(text)
  if (ms === undefined || ms <= 0) throw new UsageError(`${option} takes a duration such as 30m, 12h or 90d, not "${text}"`)
  return ms
}

function requireValidName(what: string, name: string): void {
  if (!isValidName(name)) throw new UsageError(`${what} "${name}" may only use letters, digits and _ . @ - (at most 64, starting with a letter or digit)`)
}

function requiredRole(text: string | undefined): (typeof ROLES)[number] {
  if (text === undefined) throw new UsageError(`--role is required (${ROLES.join(', ')})`)
  return parseChoice('--role', text, ROLES)!
}

async function readPassword(input: PasswordInput, name: string, fromStdin: boolean): Promise<string> {
  if (fromStdin || !input.isTTY) {
    // One trailing newline is what `echo` and here-strings add. A password is one line (the login form has
    // no other kind); a second line repeating it is the confirmation a prompt would ask for.
    const text = (await input.readAll()).replace(/\r?\n$/, '')
    if (text === '') throw new UsageError('no password on stdin')
    const lines = text.split(/\r?\n/)
    if (lines.length === 1) return text
    if (lines.length === 2 && lines[0] === lines[1]) return lines[0]!
    throw new UsageError('the password on stdin must be one line (optionally followed by the same line again, as its confirmation)')
  }
  const first = await input.askHidden(`Password for ${name}: `)
  const again = await input.askHidden('Repeat it: ')
  if (first !== again) throw new UsageError('the two passwords differ')
  return first
}

function processInput(): PasswordInput {
  return {
    isTTY: process.stdin.isTTY === true,
    async readAll() {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      return Buffer.concat(chunks).toString('utf8')
    },
    askHidden,
  }
}

/** Reads one line from the terminal in raw mode, echoing nothing. Ctrl-C or Ctrl-D cancels. */
function askHidden(prompt: string): Promise<string> {
  const stdin = process.stdin
  process.stderr.write(prompt)
  return new Promise((resolve, reject) => {
    let value = ''
    const finish = (error?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
      if (error) reject(error)
      else resolve(value)
    }
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish()
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) return finish(new UsageError('cancelled'))
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('')
        else if (ch >= ' ') value += ch
      }
    }
    stdin.setEncoding('utf8')
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
  })
}
