/**
 * `/`, `/login` and `/static/*`: the status page (engine/web/page/). Registered as an encapsulated
 * plugin so its Content-Security-Policy and hooks stay its own.
 */
import type { FastifyInstance } from 'fastify'
import type { WebContext } from '../context.ts'
import { statusPage } from '../page/plugin.ts'

export function pageRoutes(app: FastifyInstance, ctx: WebContext): void {
  void app.register(statusPage, { ctx })
}
