/**
 * Starts the model server from the process settings and cairn.yaml `serve:` (SPEC section 7): port
 * from the caller, else CAIRN_SERVE_PORT, else serve.port, else 8081; host serve.host, else 127.0.0.1.
 */
import type { Logger } from 'pino'
import type { CairnConfig } from '../config/load-config.ts'
import type { Settings } from '../config/settings.ts'
import { dataSettings } from '../config/data-settings.ts'
import { parseSize } from '../config/sizes.ts'
import type { Db } from '../store/db.ts'
import { DEFAULT_BODY_LIMIT, DEFAULT_SERVE_PORT, createServeServer } from './serve-server.ts'
import type { ServeServer, ServeServerOptions } from './serve-server.ts'

export interface StartServeOptions extends Partial<Omit<ServeServerOptions, 'db' | 'log'>> {
  db: Db
  log: Logger
  settings: Settings
  config?: CairnConfig
  /** Overrides CAIRN_SERVE_PORT / serve.port (0: any free port). */
  port?: number
}

export interface RunningServe {
  server: ServeServer
  /** http://host:port/ as the server listens. */
  url: string
  close(): Promise<void>
}

/** The settings of cairn.yaml `serve:` that the server takes. */
export function serveSettings(config: CairnConfig | undefined): Pick<ServeServerOptions, 'auth' | 'bodyLimit' | 'batching' | 'threads'> {
  const serve = config?.serve ?? {}
  return {
    auth: serve.auth ?? 'bearer',
    bodyLimit: serve.body_limit === undefined ? DEFAULT_BODY_LIMIT : parseSize(serve.body_limit),
    ...(serve.batching ? { batching: { maxBatch: serve.batching.max_batch ?? 64, maxDelayMs: serve.batching.max_delay_ms ?? 0 } } : {}),
    ...(serve.threads === undefined ? {} : { threads: serve.threads }),
  }
}

export function servePort(settings: Settings, config: CairnConfig | undefined): number {
  const fromEnv = settings.env.CAIRN_SERVE_PORT
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv)
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`CAIRN_SERVE_PORT=${JSON.stringify(fromEnv)} is not a port number`)
    return n
  }
  return config?.serve?.port ?? DEFAULT_SERVE_PORT
}

export async function startServe(options: StartServeOptions): Promise<RunningServe> {
  const { settings, config } = options
  const port = options.port ?? servePort(settings, config)
  const host = config?.serve?.host ?? '127.0.0.1'
  const dataDir = options.dataDir ?? dataSettings(config ?? {}, { cwd: settings.cwd, home: settings.home, dagsFolder: settings.dagsFolder }).dir
  const server = await createServeServer({ ...serveSettings(config), ...options, dataDir })
  try {
    await server.app.listen({ port, host })
  } catch (error) {
    await server.close()
    throw error
  }
  const address = server.app.server.address()
  const actualPort = typeof address === 'object' && address ? address.port : port
  const shownHost = host.includes(':') ? `[${host}]` : host
  return { server, url: `http://${shownHost}:${actualPort}/`, close: () => server.close() }
}
