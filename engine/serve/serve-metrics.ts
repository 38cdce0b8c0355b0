/**
 * The model server's `/metrics` (Prometheus text), per model version, counted in this process:
 *
 *   cairn_serve_requests_total{model,version,code}          inference answers by HTTP status
 *   cairn_serve_errors_total{model,version}                 answers the version failed to give (serving-stats.ts)
 *   cairn_serve_request_duration_seconds{model,version}     histogram of answer latency (request received to answer)
 *   cairn_serve_traffic_share{model,version}                the share of routed requests this server gives the version
 *   cairn_serve_rejected_total{code}                        requests refused before reaching a version (no token, unknown model, bad body)
 *   cairn_serve_*                                           the process's own Node.js metrics
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export const LATENCY_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export interface ServeMetrics {
  answered(model: string, version: number, code: number, seconds: number, error: boolean): void
  rejected(code: number): void
  render(shares: { model: string; version: number; share: number }[]): Promise<string>
  contentType: string
}

export function createServeMetrics(): ServeMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'cairn_serve_' })
  const requests = new Counter({ name: 'cairn_serve_requests_total', help: 'Inference answers of each model version by HTTP status.', labelNames: ['model', 'version', 'code'], registers: [registry] })
  const errors = new Counter({ name: 'cairn_serve_errors_total', help: 'Answers a model version failed to give: inference errors, 5xx, and routed requests valid for production that the version refused.', labelNames: ['model', 'version'], registers: [registry] })
  const duration = new Histogram({ name: 'cairn_serve_request_duration_seconds', help: 'Latency of inference answers, from the request received to the answer ready, by model version.', labelNames: ['model', 'version'], buckets: LATENCY_SECONDS_BUCKETS, registers: [registry] })
  const share = new Gauge({ name: 'cairn_serve_traffic_share', help: 'Share of routed requests this server gives each loaded model version (0 for one loaded only for requests that name it).', labelNames: ['model', 'version'], registers: [registry] })
  const rejected = new Counter({ name: 'cairn_serve_rejected_total', help: 'Requests refused before reaching a model version (no token, unknown model, unreadable body), by HTTP status.', labelNames: ['code'], registers: [registry] })
  // Label children cached: a request costs a map lookup, not prom-client's label hashing.
  const children = new Map<string, { requests: Map<number, Counter<string>['inc']>; errors: () => void; observe: (s: number) => void }>()
  return {
    answered(model, version, code, seconds, error) {
      const k = `${model}\u0000${version}`
      let c = children.get(k)
      if (!c) {
        const labels = { model, version: String(version) }
        const e = errors.labels(labels)
        const h = duration.labels(labels)
        c = { requests: new Map(), errors: () => e.inc(), observe: (s) => h.observe(s) }
        children.set(k, c)
      }
      let inc = c.requests.get(code)
      if (!inc) {
        const child = requests.labels({ model, version: String(version), code: String(code) })
        inc = () => child.inc()
        c.requests.set(code, inc)
      }
      inc()
      if (error) c.errors()
      c.observe(seconds)
    },
    rejected(code) {
      rejected.inc({ code: String(code) })
    },
    async render(shares) {
      share.reset()
      for (const s of shares) share.set({ model: s.model, version: String(s.version) }, s.share)
      return registry.metrics()
    },
    contentType: registry.contentType,
  }
}
