/**
 * The status page: `/` (the app shell; anonymous visitors are sent to `/login`), `/login`, and
 * `/static/*` (plain ES modules and CSS from ./static, no build step, plus the dagre graph layout
 * library served from node_modules). Registered as an encapsulated plugin, so its Content-Security-Policy
 * (scripts, styles and fetches from this origin only, nothing inline) replaces the API's
 * `default-src 'none'` for these routes alone. It also adds the page's two extra reads (page-api.ts).
 */
import { readFile, readdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, extname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { identify } from '../auth/authenticate.ts'
import type { WebContext } from '../context.ts'
import { pageApiRoutes } from './page-api.ts'

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'static')
const DAGRE_FILE = join(dirname(createRequire(import.meta.url).resolve('@dagrejs/dagre/package.json')), 'dist', 'dagre.esm.js')

const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ')

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/** URL path under /static/ -> file on disk; fixed when the server starts, so no request names a path of its own. */
async function staticFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  const entries = await readdir(STATIC_DIR, { recursive: true, withFileTypes: true })
  for (const entry of entries) {
    if (!entry.isFile() || !(extname(entry.name) in TYPES)) continue
    const full = join(entry.parentPath, entry.name)
    files.set(relative(STATIC_DIR, full).split(sep).join('/'), full)
  }
  files.set('vendor/dagre.js', DAGRE_FILE)
  return files
}

export async function statusPage(app: FastifyInstance, options: { ctx: WebContext }): Promise<void> {
  const { ctx } = options
  const files = await staticFiles()
  const shell = await readFile(join(STATIC_DIR, 'index.html'), 'utf8')
  const login = await readFile(join(STATIC_DIR, 'login.html'), 'utf8')

  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.getHeader('content-security-policy') !== undefined) reply.header('content-security-policy', PAGE_CSP)
    return payload
  })

  const html = (reply: FastifyReply, text: string) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(text)

  // Public at the hook, judged here: a page visit without a session is redirected, not answered 401.
  app.get('/', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (request, reply) => ((await identify(ctx.db, request)) ? html(reply, shell) : reply.redirect('/login', 303)),
  })

  app.get('/login', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (_request, reply) => html(reply, login),
  })

  app.get<{ Params: { '*': string } }>('/static/*', {
    config: { access: 'public' },
    schema: { hide: true },
    handler: async (request, reply) => {
      const file = files.get(request.params['*'])
      if (!file) return reply.code(404).send({ error: 'not_found', message: 'no such file' })
      // Short caching: a page reload after an upgrade picks up the new code within a minute.
      return reply.type(TYPES[extname(file)] ?? 'application/octet-stream').header('cache-control', 'public, max-age=60').send(await readFile(file))
    },
  })

  pageApiRoutes(app, ctx)
}
