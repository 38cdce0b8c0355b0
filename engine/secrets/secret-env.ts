/**
 * The worker's secrets leave its environment at start-up: `CAIRN_SECRET_*` values are copied into
 * memory and deleted from the process environment (and DATABASE_URL with them), so nothing the
 * process starts later can inherit them by accident and they are looked up only when a task's
 * templates name them.
 *
 * This does not hide them from /proc/<pid>/environ, which keeps showing the environment the process
 * was started with whatever is deleted later. What keeps tasks out of it is that they run as another
 * OS user (workers.run_as), and Linux lets only the same uid (with ptrace rights) read that file.
 */

const SECRET_PREFIX = 'CAIRN_SECRET_'

/** Removes the secret variables from `env` (the process environment, in the CLI) and returns them. */
export function takeSecretVariables(env: Record<string, string | undefined>): Readonly<Record<string, string>> {
  const taken: Record<string, string> = Object.create(null) as Record<string, string>
  for (const key of Object.keys(env)) {
    if (!key.startsWith(SECRET_PREFIX) && key !== 'DATABASE_URL') continue
    const value = env[key]
    if (value !== undefined && key !== 'DATABASE_URL') taken[key] = value
    delete env[key]
  }
  return Object.freeze(taken)
}
