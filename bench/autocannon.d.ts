/** The part of autocannon (which ships no types) that the benchmarks use. */
declare module 'autocannon' {
  interface Histogram { average: number; p50: number; p90: number; p99: number; max: number }
  interface Result { latency: Histogram; requests: Histogram; non2xx: number; errors: number; timeouts: number }
  interface Options {
    url: string
    connections?: number
    duration?: number
    headers?: Record<string, string>
    requests?: { method?: string; path?: string; body?: string; headers?: Record<string, string>; setupRequest?: (request: { path: string }) => { path: string } }[]
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
