/**
 * The registry of CLI commands. A command's code (and with it pg, pg-boss, fastify, the engine) is
 * imported only when that command runs: `cairn validate` must not pay for loading the database
 * layer, and `cairn help` loads nothing at all.
 */
import type { CommandIo, ExitCode } from './io.ts'
import { USAGE } from './help.ts'
import type { CommandName, CommandUsage } from './help.ts'

export type Run = (args: string[], io: CommandIo) => Promise<ExitCode>

/** A loaded command: what it runs, and its longer `--help` text when the command keeps its own. */
export interface LoadedCommand {
  run: Run
  help?: string
}

export interface Command extends CommandUsage {
  /** `forRun`: the command is about to run (not only to print its help), so it may start work early. */
  load(forRun?: boolean): Promise<LoadedCommand>
}

const LOADERS: Readonly<Record<CommandName, (forRun?: boolean) => Promise<LoadedCommand>>> = {
  validate: async (forRun) => {
    // Helper threads load the validator while this thread does (helper-threads.ts).
    if (forRun) (await import('../dag/helper-threads.ts')).prestartHelpers()
    return { run: (await import('./validate-command.ts')).validateCommand }
  },
  up: async () => ({ run: (await import('./process-commands.ts')).upCommand }),
  scheduler: async () => ({ run: (await import('./process-commands.ts')).schedulerCommand }),
  worker: async () => ({ run: (await import('./process-commands.ts')).workerCommand }),
  web: async () => ({ run: (await import('./process-commands.ts')).webCommand }),
  serve: async () => ({ run: (await import('./process-commands.ts')).serveCommand }),
  trigger: async () => {
    const m = await import('./trigger-command.ts')
    return { run: m.triggerCommand, help: m.TRIGGER_HELP }
  },
  backfill: async () => {
    const m = await import('./backfill-command.ts')
    return { run: m.backfillCommand, help: m.BACKFILL_HELP }
  },
  dags: async () => {
    const m = await import('./runs-command.ts')
    return { run: m.dagsCommand, help: m.DAGS_HELP }
  },
  runs: async () => {
    const m = await import('./runs-command.ts')
    return { run: m.runsCommand, help: m.RUNS_HELP }
  },
  tasks: async () => {
    const m = await import('./runs-command.ts')
    return { run: m.tasksCommand, help: m.TASKS_HELP }
  },
  logs: async () => {
    const m = await import('./logs-command.ts')
    return { run: m.logsCommand, help: m.LOGS_HELP }
  },
  cancel: async () => {
    const m = await import('./control-commands.ts')
    return { run: m.cancelCommand, help: m.CANCEL_HELP }
  },
  clear: async () => {
    const m = await import('./control-commands.ts')
    return { run: m.clearCommand, help: m.CLEAR_HELP }
  },
  pause: async () => {
    const m = await import('./control-commands.ts')
    return { run: m.pauseCommand, help: m.PAUSE_HELP }
  },
  unpause: async () => {
    const m = await import('./control-commands.ts')
    return { run: m.unpauseCommand, help: m.UNPAUSE_HELP }
  },
  users: async () => {
    const m = await import('./auth-commands.ts')
    return { run: (args, io) => m.usersCommand(args, io), help: m.USERS_HELP }
  },
  tokens: async () => {
    const m = await import('./auth-commands.ts')
    return { run: m.tokensCommand, help: m.TOKENS_HELP }
  },
  datasets: async () => {
    const m = await import('./datasets-command.ts')
    return { run: m.datasetsCommand, help: m.DATASETS_HELP }
  },
  models: async () => {
    const m = await import('./models-command.ts')
    return { run: m.modelsCommand, help: m.MODELS_HELP }
  },
  features: async () => {
    const m = await import('./features-command.ts')
    return { run: m.featuresCommand, help: m.FEATURES_HELP }
  },
  db: async () => {
    const m = await import('./db-command.ts')
    return { run: m.dbCommand, help: m.DB_HELP }
  },
}

export const COMMANDS: Readonly<Record<CommandName, Command>> = Object.fromEntries(
  (Object.keys(USAGE) as CommandName[]).map((name) => [name, { ...USAGE[name], load: LOADERS[name] }]),
) as Record<CommandName, Command>
