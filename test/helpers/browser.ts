/**
 * Headless Chromium for the page tests (playwright-core against the Debian `chromium` on PATH; its own
 * browser download does not work here). Without Chromium a browser test file is skipped with the reason
 * printed, except under CI=true, where it fails.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { chromium } from 'playwright-core'
import type { BrowserContext, BrowserContextOptions, Page } from 'playwright-core'

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

export function findChromium(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, 'chromium')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** false when Chromium is there; else the reason to skip (and, under CI=true, a failing test says so). */
export function browserSkipReason(): false | string {
  if (findChromium()) return false
  const reason = 'chromium is not on PATH (apt-get install -y chromium); the browser test is skipped'
  if (process.env.CI === 'true') test('chromium is installed (required when CI=true)', () => assert.fail('chromium is not on PATH, and CI=true: the browser tests must run'))
  else console.log(`# SKIP ${reason}`)
  return reason
}

/** A fresh profile in a temp dir; `close()` also removes it. */
export async function launchBrowser(options: BrowserContextOptions = {}): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profileDir = mkdtempSync(join(tmpdir(), 'cairn-chromium-'))
  const context = await chromium.launchPersistentContext(profileDir, { executablePath: findChromium()!, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1400, height: 900 }, ...options })
  return {
    context,
    async close() {
      await context.close().catch(() => undefined)
      rmSync(profileDir, { recursive: true, force: true })
    },
  }
}

/**
 * The context's page with its default timeout, page errors (and console errors, unless `console` is
 * false) collected into `errors`, so a test can assert at its end that the page reported none.
 */
export async function watchedPage(context: BrowserContext, timeoutMs: number, errors: string[], options: { console?: boolean } = {}): Promise<Page> {
  context.setDefaultTimeout(timeoutMs)
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`))
  if (options.console !== false) page.on('console', (message) => message.type() === 'error' && errors.push(`console: ${message.text()}`))
  return page
}

/** Opens `url`, which shows the login form to a new session, and logs in. */
export async function logIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(url)
  await page.waitForSelector('#login-form')
  await page.fill('#username', username)
  await page.fill('#password', password)
  await page.click('button[type=submit]')
}


/**
 * undefined when the page is no wider than its viewport; else by how much, with the first elements that stick
 * out (elements inside `scrollers`, a selector of boxes that scroll sideways on purpose, aside).
 */
export async function overflowsViewport(page: Page, scrollers?: string): Promise<string | undefined> {
  const overflow = await page.evaluate((inside) => {
    const root = (globalThis as any).document.documentElement
    const wide = [...(globalThis as any).document.querySelectorAll('body *')].filter((el: any) => el.getBoundingClientRect().right > root.clientWidth + 0.5 && !(inside && el.closest(inside))).map((el: any) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`)
    return { by: root.scrollWidth - root.clientWidth, width: root.clientWidth, wide: wide.slice(0, 5) }
  }, scrollers ?? null)
  return overflow.by <= 0 ? undefined : `the page is ${overflow.by} px wider than a ${overflow.width} px screen: ${overflow.wide.join(', ')}`
}
