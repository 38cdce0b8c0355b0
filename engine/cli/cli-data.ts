/** What the data commands (`datasets`, `models`) share: the deployment's data settings and who is acting. */
import { userInfo } from 'node:os'
import { loadConfig } from '../config/load-config.ts'
import { dataSettings } from '../config/data-settings.ts'
import type { DataSettings } from '../config/data-settings.ts'
import type { Settings } from '../config/settings.ts'
import { UsageError } from './io.ts'

/** cairn.yaml's `data` (and the rest the data services need), read when a command first needs it. */
export function cliDataSettings(settings: Settings): DataSettings {
  const config = loadConfig(settings.configPath, settings.cwd)
  if (!config.ok) throw new UsageError(`${config.file} is invalid; \`cairn validate\` shows why`)
  return dataSettings(config.config, { cwd: settings.cwd, home: settings.home, dagsFolder: settings.dagsFolder })
}

/** Who acts from the CLI (imports, registrations, stage changes): the OS user, or 'cli' when the system cannot say. */
export function osUser(): string {
  try {
    return userInfo().username || 'cli'
  } catch {
    return 'cli'
  }
}
