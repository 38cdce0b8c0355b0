/**
 * Rows to the API's JSON shapes (see schemas.ts). Each one extends the command line's shape of the
 * same thing (SPEC section 5), so a field the CLI prints is spelt and formatted the same in the API.
 */
import { isoOrNull, logLineJson as cliLogLineJson, runJson as cliRunJson, taskJson } from '../json-shapes.ts'
import type { TaskSpec } from '../dag/dag-model.ts'
import type { LogLine } from '../store/logs.ts'
import type { RunRow, TaskInstanceRow } from '../store/runs.ts'
import type { UserRow } from './auth/users.ts'
import { tokenState } from './auth/tokens.ts'
import type { TokenListing } from './auth/tokens.ts'

export { isoOrNull }

export function runJson(run: RunRow) {
  return {
    ...cliRunJson(run),
    run_type: run.runType,
    data_interval_start: run.dataIntervalStart.toISOString(),
    data_interval_end: run.dataIntervalEnd.toISOString(),
    params: run.params,
  }
}

export function taskInstanceJson(ti: TaskInstanceRow, task: TaskSpec | undefined) {
  return {
    ...taskJson(ti),
    failures: ti.failures,
    operator: task?.operator ?? null,
    depends_on: task?.dependsOn ?? [],
    pool: ti.pool,
    queued_at: isoOrNull(ti.queuedAt),
    next_retry_at: isoOrNull(ti.nextRetryAt),
    failure_kind: ti.failureKind,
    message: ti.message,
    outputs: ti.outputs,
  }
}

export function logLineJson(attempt: number, line: LogLine) {
  return { id: line.id, ...cliLogLineJson(attempt, line), ...(line.dropped ? { dropped: line.dropped } : {}) }
}

export function userJson(user: UserRow) {
  return { username: user.username, role: user.role, disabled: user.disabled, created_at: user.createdAt.toISOString() }
}

/** A token as `cairn tokens list --format json` and `GET /api/v1/tokens` show it: never the secret. */
export function tokenJson(token: TokenListing, now: Date) {
  return {
    name: token.name,
    role: token.role,
    state: tokenState(token, now),
    created_at: token.createdAt.toISOString(),
    created_by: token.createdBy,
    owner: token.owner,
    expires_at: isoOrNull(token.expiresAt),
    last_used_at: isoOrNull(token.lastUsedAt),
    revoked_at: isoOrNull(token.revokedAt),
  }
}
