// The login form: POST /api/v1/login sets the session cookie (HttpOnly) and returns the CSRF token,
// which the page keeps in sessionStorage and sends as X-CSRF-Token on every POST.
import { CSRF_KEY } from './api.js'

const form = document.getElementById('login-form')
const error = document.getElementById('login-error')

form.addEventListener('submit', async (event) => {
  event.preventDefault()
  error.hidden = true
  const username = form.username.value.trim()
  const password = form.password.value
  if (!username || !password) return show('Enter your user name and password.')
  const button = form.querySelector('button')
  button.disabled = true
  try {
    const res = await fetch('/api/v1/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ username, password }),
      credentials: 'same-origin',
    })
    const body = await res.json().catch(() => null)
    if (!res.ok) return show(body?.message ?? `login failed (HTTP ${res.status})`)
    sessionStorage.setItem(CSRF_KEY, body.csrf_token)
    // The page a visitor asked for: `next` when the page sent them here, else the fragment the browser kept
    // through the server's redirect of /#/dags/x to /login.
    const next = new URLSearchParams(location.search).get('next') ?? location.hash
    location.assign('/' + (next.startsWith('#/') ? next : ''))
  } catch {
    show('The server cannot be reached.')
  } finally {
    button.disabled = false
  }
})

function show(message) {
  error.textContent = message
  error.hidden = false
  form.password.select()
}
