// The JSON API as the page uses it: same-origin fetch with the session cookie, the CSRF token on
// every state-changing request, and a redirect to the login page when the session is gone.

export const CSRF_KEY = 'cairn.csrf'

let csrfToken = sessionStorage.getItem(CSRF_KEY)

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' }
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken ?? ''
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch('/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' })
  if (res.status === 401) {
    sessionStorage.removeItem(CSRF_KEY)
    location.assign('/login?next=' + encodeURIComponent(location.hash))
    throw new ApiError(401, { message: 'the session has ended; log in again' })
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

/** Who is logged in; also refreshes the CSRF token (a new tab has none in sessionStorage). */
export async function loadSession() {
  const session = await api('/session')
  if (session.csrf_token) {
    csrfToken = session.csrf_token
    sessionStorage.setItem(CSRF_KEY, csrfToken)
  }
  return session
}

export async function logout() {
  try {
    await api('/logout', { method: 'POST' })
  } finally {
    sessionStorage.removeItem(CSRF_KEY)
    location.assign('/login')
  }
}

export const enc = encodeURIComponent
