/**
 * Gradient averaging across ranks through rank 0, over plain TCP (what torchrun's c10d store does for
 * rendezvous, reduced to the one collective the trainer needs). Rank 0 listens on MASTER_ADDR:MASTER_PORT;
 * every other rank connects, says who it is, then, for every step, sends its shard size and its vector
 * and receives the weighted mean: sum(n_r * v_r) / sum(n_r), accumulated in Float64 in rank order, so
 * the result is the same on every rank and, with one rank, exactly its own vector. With two ranks both
 * send and both compute the mean (exchangePair), so a step waits for one message instead of a round trip.
 *
 * Frames: a 4-byte little-endian byte length, then Float32 values (little-endian). The first frame of a
 * connection is [MAGIC, rank, worldSize, vectorLength]. A peer that closes its connection, sends a
 * malformed frame or stays silent past the timeout fails every rank with a message naming it.
 */
import net from 'node:net'

const MAGIC = 0xca1

export class CollectiveError extends Error {
  override name = 'CollectiveError'
}

export interface Collective {
  rank: number
  worldSize: number
  /** Weighted mean of `vector` over ranks, by `weight` (the shard's row count). */
  average(vector: Float32Array, weight: number): Promise<Float32Array>
  close(): void
}

export interface CollectiveOptions {
  rank: number
  worldSize: number
  masterAddr: string
  masterPort: number
  /** Length of every vector exchanged (checked at the handshake). */
  vectorLength: number
  /** How long to wait for peers to join and for each step. @default 300000 */
  timeoutMs?: number
}

export async function openCollective(options: CollectiveOptions): Promise<Collective> {
  if (options.worldSize === 1) {
    return {
      rank: 0,
      worldSize: 1,
      async average(vector) {
        return vector
      },
      close() {},
    }
  }
  return options.rank === 0 ? openMaster(options) : openWorker(options)
}

/** Reads length-prefixed Float32 frames from a socket; `next()` waits for the following one. */
class FrameReader {
  private buffered: Buffer[] = []
  private bytes = 0
  private frames: Float32Array[] = []
  private waiting: { resolve: (f: Float32Array) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined
  private failure: Error | undefined
  private readonly socket: net.Socket
  private peer: string

  constructor(socket: net.Socket, peer: string) {
    this.socket = socket
    this.peer = peer
    socket.on('data', (chunk: Buffer) => this.push(chunk))
    socket.on('error', (error) => this.fail(new CollectiveError(`${this.peer} lost the connection (${error.message}): the process died or the network failed`)))
    socket.on('close', () => this.fail(new CollectiveError(`${this.peer} closed the connection (the process died or stopped)`)))
  }

  describe(peer: string) {
    this.peer = peer
  }

  private push(chunk: Buffer) {
    this.buffered.push(chunk)
    this.bytes += chunk.length
    for (;;) {
      if (this.bytes < 4) return
      let head = Buffer.concat(this.buffered)
      const length = head.readUInt32LE(0)
      if (length % 4 !== 0 || length > 1 << 30) {
        this.fail(new CollectiveError(`${this.peer} sent a malformed frame (length ${length})`))
        this.socket.destroy()
        return
      }
      if (head.length < 4 + length) {
        this.buffered = [head]
        return
      }
      const body = new Float32Array(length / 4)
      Buffer.from(body.buffer).set(head.subarray(4, 4 + length))
      head = head.subarray(4 + length)
      this.buffered = head.length > 0 ? [head] : []
      this.bytes = head.length
      this.deliver(body)
    }
  }

  private deliver(frame: Float32Array) {
    const waiter = this.waiting
    if (waiter) {
      this.waiting = undefined
      clearTimeout(waiter.timer)
      waiter.resolve(frame)
    } else this.frames.push(frame)
  }

  private fail(error: Error) {
    if (this.failure) return
    this.failure = error
    const waiter = this.waiting
    if (waiter) {
      this.waiting = undefined
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
  }

  next(timeoutMs: number, what: string): Promise<Float32Array> {
    const frame = this.frames.shift()
    if (frame) return Promise.resolve(frame)
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined
        reject(new CollectiveError(`${this.peer} sent nothing for ${Math.round(timeoutMs / 1000)} s while waiting for ${what}`))
      }, timeoutMs)
      this.waiting = { resolve, reject, timer }
    })
  }
}

/** One write per frame (with Nagle off, two writes would go out as two segments and two wake-ups). */
function send(socket: net.Socket, values: Float32Array): void {
  const frame = Buffer.allocUnsafe(4 + values.byteLength)
  frame.writeUInt32LE(values.byteLength, 0)
  frame.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 4)
  socket.write(frame)
}

async function openMaster(options: CollectiveOptions): Promise<Collective> {
  const timeoutMs = options.timeoutMs ?? 300_000
  const peers: { socket: net.Socket; reader: FrameReader }[] = []
  const server = net.createServer()
  const joined = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      const missing = Array.from({ length: options.worldSize - 1 }, (_, i) => i + 1).filter((r) => !peers[r])
      reject(new CollectiveError(`rank(s) ${missing.join(', ')} did not connect to ${options.masterAddr}:${options.masterPort} within ${Math.round(timeoutMs / 1000)} s`))
    }, timeoutMs)
    let count = 0
    server.on('connection', (socket) => {
      socket.setNoDelay(true)
      const reader = new FrameReader(socket, `a peer from ${socket.remoteAddress}`)
      reader.next(timeoutMs, 'its handshake').then(
        (hello) => {
          const [magic, rank, world, length] = hello
          if (magic !== MAGIC || hello.length !== 4) {
            socket.destroy()
            return
          }
          const problem =
            world !== options.worldSize ? `WORLD_SIZE ${world}, rank 0 has ${options.worldSize}`
            : length !== options.vectorLength ? `a model with ${length} values, rank 0 has ${options.vectorLength} (different features or model?)`
            : !Number.isInteger(rank) || rank! < 1 || rank! >= options.worldSize ? `RANK ${rank}, outside 1..${options.worldSize - 1}`
            : peers[rank!] ? `RANK ${rank}, already connected`
            : undefined
          if (problem) {
            clearTimeout(timer)
            socket.destroy()
            reject(new CollectiveError(`a rank joined with ${problem}`))
            return
          }
          reader.describe(`rank ${rank}`)
          peers[rank!] = { socket, reader }
          if (++count === options.worldSize - 1) {
            clearTimeout(timer)
            resolve()
          }
        },
        () => socket.destroy(),
      )
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new CollectiveError(`rank 0 cannot listen on ${options.masterAddr}:${options.masterPort}: ${error.message}`)))
    // An IP address is listened on as given. A host name is not: Debian-style /etc/hosts map a machine's own
    // name to 127.0.1.1, where no other host could reach it; as torch's TCPStore, listen on every interface.
    server.listen(options.masterPort, net.isIP(options.masterAddr) ? options.masterAddr : undefined, () => resolve())
  })
  try {
    await joined
  } catch (error) {
    server.close()
    for (const peer of peers) peer?.socket.destroy()
    throw error
  }
  server.close()
  let step = 0
  return {
    rank: 0,
    worldSize: options.worldSize,
    async average(vector, weight) {
      step++
      if (options.worldSize === 2) return exchangePair(peers[1]!.socket, peers[1]!.reader, 0, vector, weight, step, timeoutMs, `its gradients of step ${step}`, 'rank 1')
      const frames = await Promise.all(peers.slice(1).map((p) => p.reader.next(timeoutMs, `its gradients of step ${step}`)))
      const sum = new Float64Array(vector.length)
      let total = weight
      for (let i = 0; i < vector.length; i++) sum[i] = weight * vector[i]!
      frames.forEach((frame, index) => {
        if (frame.length !== vector.length + 1) throw new CollectiveError(`rank ${index + 1} sent ${frame.length - 1} values at step ${step}, expected ${vector.length}`)
        const n = frame[0]!
        total += n
        for (let i = 0; i < vector.length; i++) sum[i]! += n * frame[i + 1]!
      })
      const reply = new Float32Array(vector.length + 1)
      reply[0] = total
      for (let i = 0; i < vector.length; i++) reply[i + 1] = total > 0 ? sum[i]! / total : 0
      for (const peer of peers.slice(1)) send(peer.socket, reply)
      return reply.subarray(1)
    },
    close() {
      for (const peer of peers.slice(1)) peer.socket.end()
    },
  }
}

/**
 * Two ranks: each sends its [weight, ...vector] to the other at once and both compute the same mean, rank 0's
 * term first, in Float64 (the same operations on the same Float32 inputs give the same bits on both). A step
 * then waits for one message, not for rank 0 to receive, average and reply: on a busy machine each wake-up of
 * a process can cost milliseconds.
 */
async function exchangePair(socket: net.Socket, reader: FrameReader, rank: 0 | 1, vector: Float32Array, weight: number, step: number, timeoutMs: number, what: string, peer: string): Promise<Float32Array> {
  const mine = new Float32Array(vector.length + 1)
  mine[0] = weight
  mine.set(vector, 1)
  send(socket, mine)
  const theirs = await reader.next(timeoutMs, what)
  if (theirs.length !== mine.length) throw new CollectiveError(`${peer} sent ${theirs.length - 1} values at step ${step}, expected ${vector.length}`)
  const [first, second] = rank === 0 ? [mine, theirs] : [theirs, mine]
  const total = first[0]! + second[0]!
  const mean = new Float32Array(vector.length)
  if (total > 0) for (let i = 0; i < mean.length; i++) mean[i] = (first[0]! * first[i + 1]! + second[0]! * second[i + 1]!) / total
  return mean
}

async function openWorker(options: CollectiveOptions): Promise<Collective> {
  const timeoutMs = options.timeoutMs ?? 300_000
  const deadline = Date.now() + timeoutMs
  const where = `rank 0 at ${options.masterAddr}:${options.masterPort}`
  let socket: net.Socket | undefined
  let lastError = ''
  // Rank 0 may start after this rank (as torchrun's workers wait for the store): retry until the deadline.
  while (!socket) {
    try {
      socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: options.masterAddr, port: options.masterPort })
        s.once('connect', () => resolve(s))
        s.once('error', reject)
      })
    } catch (error) {
      lastError = (error as Error).message
      if (Date.now() > deadline) throw new CollectiveError(`cannot connect to ${where} within ${Math.round(timeoutMs / 1000)} s: ${lastError}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }
  socket.setNoDelay(true)
  const reader = new FrameReader(socket, where)
  send(socket, Float32Array.of(MAGIC, options.rank, options.worldSize, options.vectorLength))
  let step = 0
  let closing = false
  const connected = socket
  return {
    rank: options.rank,
    worldSize: options.worldSize,
    async average(vector, weight) {
      step++
      if (options.worldSize === 2) return exchangePair(connected, reader, 1, vector, weight, step, timeoutMs, `the gradients of step ${step}`, where)
      const frame = new Float32Array(vector.length + 1)
      frame[0] = weight
      frame.set(vector, 1)
      send(connected, frame)
      const reply = await reader.next(timeoutMs, `the averaged gradients of step ${step}`)
      if (reply.length !== vector.length + 1) throw new CollectiveError(`${where} replied with ${reply.length - 1} values at step ${step}, expected ${vector.length}`)
      return reply.subarray(1)
    },
    close() {
      if (closing) return
      closing = true
      connected.end()
    },
  }
}
