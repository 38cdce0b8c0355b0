/** Test listeners on ports of a given range (a daemon holding a port that a job would pick). */
import net from 'node:net'

/** A server listening on `host` at a random free port of [low, low + count); the caller closes it. */
export async function listenInRange(host: string, low: number, count: number): Promise<{ server: net.Server; port: number }> {
  for (;;) {
    const server = net.createServer()
    const port = low + Math.floor(Math.random() * count)
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false))
      server.listen(port, host, () => resolve(true))
    })
    if (ok) return { server, port }
  }
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}
