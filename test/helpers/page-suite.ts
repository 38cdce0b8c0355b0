/**
 * What every page test suite sets up before its first test: a database (a bare migrated one with a data
 * folder, or a test engine), a user, the web server on a free port, and a Chromium page logged in as
 * that user whose errors are collected. `stop()` tears it all down in reverse order of setup.
 *
 *   const suite = pageSuite()
 *   after(() => suite.stop())
 *   before(async () => {
 *     const { db, dir } = await suite.database()
 *     // ...seed...
 *     ;({ page, base } = await suite.open({ db, user: 'viewer_vic', at: '/#/datasets', web: { data: { dir } } }))
 *   })
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { BrowserContextOptions, Page } from 'playwright-core'
import { createDb } from '../../engine/store/db.ts'
import type { Db } from '../../engine/store/db.ts'
import { migrate } from '../../engine/store/migrate.ts'
import type { WebServerOptions } from '../../engine/web/server.ts'
import type { Role } from '../../engine/web/auth/roles.ts'
import { createUser } from '../../engine/web/auth/users.ts'
import { launchBrowser, logIn, watchedPage } from './browser.ts'
import { startTestEngine } from './engine.ts'
import type { TestEngine, TestEngineOptions } from './engine.ts'
import { createTestDatabase, testLogger } from './postgres.ts'
import { startTestWeb } from './web-client.ts'

/** Where page tests leave their screenshots. */
export const ARTIFACTS = new URL('../../test-artifacts/browser/', import.meta.url).pathname
/** A value that runs script if a page ever puts it into HTML instead of text (it sets `window.__pwned`). */
export const HOSTILE = '<img src=x onerror="window.__pwned=1">'
/** The password of the suite's user. */
export const PASSWORD = 'correct horse battery'

export interface OpenPageOptions {
  db: Db
  /** Created (with `role`) before the web server starts; the page logs in as it at `at`. */
  user: string
  /** @default 'viewer' */
  role?: Role
  /** Where the page logs in (a path with its hash, e.g. `/#/models`); the login form shows there first. Without it the page stays blank, for a test that logs in itself. */
  at?: string
  /** Passed on to the web server (its `db` is `db`, its `log` a test logger unless given). */
  web?: Omit<Partial<WebServerOptions>, 'db'>
  /** The page's default timeout. @default 20000 */
  timeoutMs?: number
  /** Collect console errors too (page errors always). @default true */
  console?: boolean
  /** For the browser context (e.g. `timezoneId`). */
  browser?: BrowserContextOptions
}

export interface PageSuite {
  /** Page errors (and console errors, unless opened with `console: false`); a suite's last test asserts none. */
  readonly pageErrors: string[]
  /** Registers a cleanup step for stop(); shaped as a test context's `after`, so helpers that take one take the suite. */
  after(step: () => Promise<unknown> | unknown): void
  /** A fresh migrated database and an empty data folder, both removed by stop(). */
  database(): Promise<{ db: Db; dir: string }>
  /** A test engine on a fresh database, stopped by stop(). */
  engine(options: TestEngineOptions): Promise<TestEngine>
  /** Creates the user, starts the web server on `db`, opens Chromium and logs in at `at` (when given). */
  open(options: OpenPageOptions): Promise<{ page: Page; base: string; app: FastifyInstance }>
  /** Every cleanup step in reverse order of registration; a failing step does not keep the rest from running. */
  stop(): Promise<void>
}

export function pageSuite(): PageSuite {
  const steps: (() => Promise<unknown> | unknown)[] = []
  const pageErrors: string[] = []
  const after = (step: () => Promise<unknown> | unknown): void => void steps.push(step)
  return {
    pageErrors,
    after,
    async database() {
      const dir = mkdtempSync(join(tmpdir(), 'cairn-page-suite-'))
      after(() => rmSync(dir, { recursive: true, force: true }))
      const log = testLogger()
      const db = createDb(await createTestDatabase({ after }), { log })
      after(() => db.close())
      await migrate(db, log)
      return { db, dir }
    },
    engine: (options) => startTestEngine({ after }, options),
    async open(options) {
      mkdirSync(ARTIFACTS, { recursive: true })
      if (!(await createUser(options.db, { username: options.user, role: options.role ?? 'viewer', password: PASSWORD }))) throw new Error(`the user ${options.user} already exists`)
      const { app, base } = await startTestWeb({ db: options.db, log: testLogger(), ...options.web })
      after(() => app.close())
      const browser = await launchBrowser(options.browser)
      after(() => browser.close())
      const page = await watchedPage(browser.context, options.timeoutMs ?? 20_000, pageErrors, { console: options.console ?? true })
      if (options.at !== undefined) await logIn(page, base + options.at, options.user, PASSWORD)
      return { page, base, app }
    },
    async stop() {
      for (const step of steps.splice(0).reverse()) {
        try {
          await step()
        } catch {
          // keep tearing down the rest
        }
      }
    },
  }
}
