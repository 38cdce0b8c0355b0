/** The part of autocannon (which ships no types) that the benchmarks use. */
declare module 'autocannon' {
  interface Histogram { average: number; p50: number; p90: number; p99: number; max: number }
  interface Result { latency: Histogram; requests: Histogram; non2xx: number; errors: number; timeouts: number }
  interface Options {
    url: string
    connections?: number
    duration?: number
    headers?: Record<string, string>
    requests?: { method?: string; path?: string; body?: string; headers?: Record<string, string>; setupRequest?: (request: { path: string; body?: string }) => { path: string; body?: string } }[]
  }
  interface Instance extends Promise<Result> {
    /** Every response: its status, size and latency in milliseconds (not rounded). */
    on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): this
  }
  function autocannon(options: Options): Instance
  export default autocannon
}
