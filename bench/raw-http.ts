/**
 * A minimal HTTP/1.1 client over one raw keep-alive socket, as wrk or h2load would be: the caller
 * makes the request's bytes (once, or per request), an answer is complete when its headers and
 * content-length bytes of body are in (an answer without a content-length fails the benchmark), and
 * the status is read from the status line. node:http's client costs more per request than the
 * server routes it measures; this one costs next to nothing.
 */
import { once } from 'node:events'
import net from 'node:net'

/** The bytes of one request. */
export function rawRequest(url: URL, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, `host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`)
  const head = Buffer.from([...lines, '', ''].join('\r\n'), 'latin1')
  return body === undefined ? head : Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body])
}

/** Opens the connection; the function sends one request and resolves with the answer's status (one at a time). */
export async function rawConnection(url: URL): Promise<{ send: (request: Buffer) => Promise<number>; close: () => void }> {
  const socket = net.connect({ host: url.hostname, port: Number(url.port), noDelay: true })
  await once(socket, 'connect')
  let pending: { resolve: (status: number) => void; reject: (error: Error) => void } | undefined
  let buffered: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const end = buffered.indexOf('\r\n\r\n')
    if (end < 0 || pending === undefined) return
    const header = buffered.subarray(0, end).toString('latin1')
    const length = /\r\ncontent-length: *(\d+)/i.exec(header)
    if (!length) return pending.reject(new Error(`an answer without content-length: ${header.slice(0, 200)}`))
    const total = end + 4 + Number(length[1])
    if (buffered.length < total) return
    buffered = buffered.subarray(total)
    const done = pending
    pending = undefined
    done.resolve(Number(header.slice(9, 12)))
  })
  let closed = false
  socket.on('error', (error) => pending?.reject(error))
  socket.on('close', () => {
    closed = true
    pending?.reject(new Error('the server closed the connection'))
  })
  return {
    send: (request) => new Promise<number>((resolve, reject) => {
      if (closed) return reject(new Error('the connection is closed'))
      pending = { resolve, reject }
      socket.write(request)
    }),
    close: () => socket.destroy(),
  }
}
