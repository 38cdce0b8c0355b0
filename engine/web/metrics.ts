/**
 * `/metrics`: what the database knows, read at scrape time, so any number of web processes report the
 * same figures and no worker or scheduler needs a port of its own. Counts are kept on write (triggers
 * feeding engine/store/metric-rollup.ts), so a scrape reads one row per series, whatever the history;
 * the task duration histogram is cumulative, as Prometheus expects, and pruning history never lowers it.
 *
 *   cairn_runs{state}                                  runs by state
 *   cairn_task_instances{dag_id,task_id,state}         task instances by DAG, task and state
 *   cairn_queue_depth{source}                          queued task instances ("task_instances"), pg-boss jobs not yet fetched ("pgboss")
 *   cairn_task_duration_seconds{dag_id,task_id,state}  histogram of finished attempts (started to ended)
 *   cairn_worker_heartbeat_age_seconds{worker_id,hostname}  seconds since each live worker's last heartbeat
 *   cairn_scheduler_passes_total{scheduler_id,hostname}       passes of each running scheduler (reported every 5 s)
 *   cairn_scheduler_pass_seconds_total{scheduler_id,hostname} time spent in those passes
 *   cairn_scheduler_pass_seconds{scheduler_id,hostname,pass="last"|"max"}  the last pass, the longest of the last report window
 *   cairn_scheduler_heartbeat_age_seconds{scheduler_id,hostname}
 *   cairn_web_*                                        the web process's own Node.js metrics
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Metric } from 'prom-client'
import type { Db } from '../store/db.ts'
import { countWaitingJobs } from '../queue/queue-depth.ts'
import { readMetricCounts } from '../store/metric-rollup.ts'
import { listSchedulerStats } from '../store/scheduler-stats.ts'

export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400] as const

export interface WebMetrics {
  registry: Registry
  /** Reads the database and renders the Prometheus text. */
  render(): Promise<string>
  contentType: string
}

interface DurationRow {
  dag_id: string
  task_id: string
  state: string
  n: number
  total: number
  /** Cumulative counts, one per DURATION_BUCKETS bound. */
  buckets: number[]
}

export interface WebMetricsOptions {
  /** Workers and schedulers not heard from for this long are dead, not reported. @default 120 */
  liveWithinSeconds?: number
}

export function createWebMetrics(db: Db, options: WebMetricsOptions = {}): WebMetrics {
  const liveWithinSeconds = options.liveWithinSeconds ?? 120
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'cairn_web_' })
  const runs = new Gauge({ name: 'cairn_runs', help: 'Runs by state.', labelNames: ['state'], registers: [registry] })
  const tasks = new Gauge({ name: 'cairn_task_instances', help: 'Task instances by DAG, task and state.', labelNames: ['dag_id', 'task_id', 'state'], registers: [registry] })
  const queue = new Gauge({
    name: 'cairn_queue_depth',
    help: 'Work waiting for a worker: queued task instances (source="task_instances") and pg-boss jobs not yet fetched (source="pgboss").',
    labelNames: ['source'],
    registers: [registry],
  })
  const heartbeat = new Gauge({ name: 'cairn_worker_heartbeat_age_seconds', help: "Seconds since each live worker's last heartbeat (workers silent for longer than the liveness window are dead and left out).", labelNames: ['worker_id', 'hostname'], registers: [registry] })
  const schedulerLabels = ['scheduler_id', 'hostname'] as const
  const passes = new Counter({ name: 'cairn_scheduler_passes_total', help: 'Passes of each running scheduler since it started.', labelNames: schedulerLabels, registers: [registry] })
  const passTotal = new Counter({ name: 'cairn_scheduler_pass_seconds_total', help: 'Seconds each running scheduler has spent in its passes since it started.', labelNames: schedulerLabels, registers: [registry] })
  const passSeconds = new Gauge({ name: 'cairn_scheduler_pass_seconds', help: 'Duration of the last pass (pass="last") and the longest pass of the last report window (pass="max").', labelNames: [...schedulerLabels, 'pass'], registers: [registry] })
  const schedulerAge = new Gauge({ name: 'cairn_scheduler_heartbeat_age_seconds', help: "Seconds since each running scheduler's last report.", labelNames: schedulerLabels, registers: [registry] })
  let durations: DurationRow[] = []
  registry.registerMetric(durationHistogram(() => durations) as unknown as Metric)

  async function refresh(): Promise<void> {
    const [counts, waitingJobs, workers, schedulers] = await Promise.all([
      readMetricCounts(db),
      countWaitingJobs(db),
      db.query<{ worker_id: string; hostname: string; age: number }>(
        `SELECT worker_id, hostname, extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS age FROM cairn.worker
          WHERE state IN ('running', 'draining') AND heartbeat_at > clock_timestamp() - make_interval(secs => $1)`,
        [liveWithinSeconds],
      ),
      listSchedulerStats(db, liveWithinSeconds),
    ])
    runs.reset()
    tasks.reset()
    let queuedTasks = 0
    const histograms = new Map<string, DurationRow>()
    for (const c of counts) {
      if (c.kind === 'run') runs.inc({ state: c.state }, c.n)
      else if (c.kind === 'task_instance') {
        tasks.set({ dag_id: c.dag_id, task_id: c.task_id, state: c.state }, c.n)
        if (c.state === 'queued') queuedTasks += c.n
      } else {
        const key = JSON.stringify([c.dag_id, c.task_id, c.state])
        let row = histograms.get(key)
        if (!row) histograms.set(key, (row = { dag_id: c.dag_id, task_id: c.task_id, state: c.state, n: 0, total: 0, buckets: DURATION_BUCKETS.map(() => 0) }))
        row.n += c.n
        row.total += c.total
        DURATION_BUCKETS.forEach((le, i) => {
          if (c.le <= le) row.buckets[i]! += c.n
        })
      }
    }
    queue.reset()
    queue.set({ source: 'task_instances' }, queuedTasks)
    if (waitingJobs !== undefined) queue.set({ source: 'pgboss' }, waitingJobs)
    heartbeat.reset()
    for (const w of workers.rows) heartbeat.set({ worker_id: w.worker_id, hostname: w.hostname }, Math.max(0, w.age))
    durations = [...histograms.values()]
    for (const gauge of [passes, passTotal, passSeconds, schedulerAge]) gauge.reset()
    for (const r of schedulers) {
      const labels = { scheduler_id: r.scheduler_id, hostname: r.hostname }
      // Totals kept by the scheduler: a counter reset and filled with the reported value on each scrape.
      passes.inc(labels, Number(r.passes))
      passTotal.inc(labels, r.pass_seconds)
      if (r.last_pass_seconds !== null) passSeconds.set({ ...labels, pass: 'last' }, r.last_pass_seconds)
      if (r.max_pass_seconds !== null) passSeconds.set({ ...labels, pass: 'max' }, r.max_pass_seconds)
      schedulerAge.set(labels, Math.max(0, r.age))
    }
  }

  // Concurrent scrapes take turns: each resets and refills the gauges it then renders.
  let turn: Promise<unknown> = Promise.resolve()
  return {
    registry,
    contentType: registry.contentType,
    render() {
      const mine = turn.then(async () => {
        await refresh()
        return registry.metrics()
      })
      turn = mine.catch(() => undefined)
      return mine
    },
  }
}

/** A histogram whose buckets come from the database (prom-client's Histogram only counts observations). */
function durationHistogram(rows: () => DurationRow[]) {
  const name = 'cairn_task_duration_seconds'
  return {
    name,
    help: 'Duration of finished task attempts, from start to end, by DAG and final attempt state.',
    type: 'histogram',
    aggregator: 'sum',
    labelNames: ['dag_id', 'task_id', 'state'],
    reset() {},
    async get() {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = []
      for (const row of rows()) {
        const labels = { dag_id: row.dag_id, task_id: row.task_id, state: row.state }
        DURATION_BUCKETS.forEach((le, i) => values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: row.buckets[i]! }))
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: row.n })
        values.push({ metricName: `${name}_sum`, labels, value: row.total })
        values.push({ metricName: `${name}_count`, labels, value: row.n })
      }
      return { name, help: this.help, type: this.type, aggregator: this.aggregator, values }
    },
  }
}
