/**
 * A client of the Open Inference Protocol (KServe v2 REST) written from the protocol's published
 * text, with plain fetch: nothing of cairn's server code is used, so the tests check the wire.
 */
export interface OipTensor {
  name: string
  shape: number[]
  datatype: string
  data: unknown[]
}

export interface OipAnswer {
  status: number
  headers: Headers
  body: Record<string, unknown>
}

export class OipClient {
  readonly base: string
  readonly token: string | undefined

  constructor(base: string, token?: string) {
    this.base = base.replace(/\/$/, '')
    this.token = token
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra }
  }

  async get(path: string): Promise<OipAnswer> {
    const res = await fetch(`${this.base}${path}`, { headers: this.headers() })
    return { status: res.status, headers: res.headers, body: await bodyOf(res) }
  }

  /** POST v2/models/<name>[/versions/<v>]/infer with an inference request object. */
  async infer(model: string, request: { id?: string; inputs: OipTensor[]; outputs?: { name: string }[] }, options: { version?: number | string; routeKey?: string } = {}): Promise<OipAnswer> {
    const path = options.version === undefined ? `/v2/models/${model}/infer` : `/v2/models/${model}/versions/${options.version}/infer`
    return this.postRaw(path, JSON.stringify(request), options.routeKey ? { 'x-cairn-route-key': options.routeKey } : {})
  }

  async postRaw(path: string, body: string, headers: Record<string, string> = {}): Promise<OipAnswer> {
    const res = await fetch(`${this.base}${path}`, { method: 'POST', headers: this.headers({ 'content-type': 'application/json', ...headers }), body })
    return { status: res.status, headers: res.headers, body: await bodyOf(res) }
  }
}

async function bodyOf(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text()
  if (text === '') return {}
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch {
    return { text }
  }
}

/** The output tensor of this name in an inference response. */
export function output(answer: OipAnswer, name: string): OipTensor {
  const outputs = answer.body.outputs as OipTensor[] | undefined
  const found = outputs?.find((o) => o.name === name)
  if (!found) throw new Error(`no output ${name} in ${JSON.stringify(answer.body)}`)
  return found
}
