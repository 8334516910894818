/**
 * Simulated users of the two example APIs: customers with different habits and
 * loads, an integration that polls, anonymous visitors, and a scanner probing
 * for URLs the apps do not have. Loopback only, and always bounded in time.
 *
 *   node collector/examples/traffic.js --express http://127.0.0.1:3000 --koa http://127.0.0.1:3001 --seconds 30
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { seeded, sleep, USERS } from './shared/data.js'

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

function checkLoopback(url) {
  if (url === undefined) return
  if (!LOOPBACK.has(new URL(url).hostname)) {
    throw new Error(`traffic is for apps on this machine only (127.0.0.1), not ${url}`)
  }
}

/** How each simulated caller behaves: who, how many parallel loops, think time. */
const PROFILES = [
  { user: 'acme-corp', loops: 2, thinkMs: [10, 60] },
  { user: 'globex', loops: 1, thinkMs: [30, 120] },
  { user: 'initech', loops: 1, thinkMs: [80, 250] },
  { user: 'umbrella', loops: 1, thinkMs: [40, 160], heavy: true },
  { user: 'hooli', loops: 1, thinkMs: [300, 900] },
  { user: 'inventory-sync', loops: 1, thinkMs: [150, 250], bot: true },
  { user: undefined, loops: 1, thinkMs: [100, 400] },
  { user: undefined, loops: 1, thinkMs: [800, 2000], scanner: true },
]

const SCANNED = [
  '/wp-login.php',
  '/.env',
  '/admin',
  '/phpmyadmin/',
  '/api/v1/users',
  '/.git/config',
]
const WORDS = ['ri', 'night', 'gar', 'iron', 'sil', 'pa', 'winter', 'gl', 'x', 'storm', 'salt']

/**
 * One request; returns its status (0 when it could not be sent), or with
 * `read` its JSON body when the status is 2xx.
 */
async function call(stats, base, method, path, { token, body, signal, read = false } = {}) {
  if (base === undefined) return 0
  const headers = {}
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  try {
    const response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    })
    const text = await response.text()
    stats.requests++
    stats.byStatus[response.status] = (stats.byStatus[response.status] ?? 0) + 1
    if (read) return response.ok ? JSON.parse(text) : undefined
    return response.status
  } catch (error) {
    if (signal?.aborted) return 0
    stats.failed++
    stats.lastError = error.cause?.code ?? error.message
    await sleep(200) // the app is restarting, or gone
    return read ? undefined : 0
  }
}

/** One action of a signed-in customer on the bookstore (Express) or the tracker (Koa). */
async function customerAction(random, ctx) {
  const { user, urls, stats, signal, orders, heavy } = ctx
  const token = user.token
  const pick = (items) => items[Math.floor(random() * items.length)]
  const r = random()
  const api = { token, signal }
  if (r < 0.5 && urls.express !== undefined) {
    const e = urls.express
    const a = random()
    if (a < 0.2)
      return call(stats, e, 'GET', `/api/books?page=${1 + Math.floor(random() * 50)}`, api)
    if (a < 0.35) return call(stats, e, 'GET', `/api/books/search?q=${pick(WORDS)}`, api)
    if (a < 0.55) return call(stats, e, 'GET', `/api/books/${1 + Math.floor(random() * 5200)}`, api)
    if (a < 0.62)
      return call(stats, e, 'GET', `/api/books/${1 + Math.floor(random() * 50)}/reviews`, api)
    if (a < 0.66) {
      const rating = Math.floor(random() * 6) // 0 is refused
      return call(stats, e, 'POST', `/api/books/${1 + Math.floor(random() * 50)}/reviews`, {
        ...api,
        body: { rating },
      })
    }
    if (a < 0.7) return call(stats, e, 'GET', `/api/authors/${1 + Math.floor(random() * 210)}`, api)
    if (a < (heavy ? 0.85 : 0.76)) {
      // Now and then someone asks for another customer's recommendations.
      const name = random() < 0.05 ? 'globex' : user.name
      return call(stats, e, 'GET', `/api/users/${name}/recommendations`, api)
    }
    if (a < 0.86) {
      const items = random() < 0.08 ? [] : [1 + Math.floor(random() * 5000)]
      const order = await call(stats, e, 'POST', '/api/orders', {
        ...api,
        body: { items },
        read: true,
      })
      if (order?.id !== undefined) orders.push(order.id)
      return
    }
    if (a < 0.93 && orders.length > 0) {
      return call(stats, e, 'GET', `/api/orders/${pick(orders)}`, api)
    }
    if (a < 0.96 && orders.length > 0) {
      return call(stats, e, 'DELETE', `/api/orders/${orders.pop()}`, api)
    }
    return call(stats, e, 'POST', '/api/books', { ...api, body: { title: 'A new book' } })
  }
  const k = urls.koa
  const project = 1 + Math.floor(random() * 320)
  const a = random()
  if (a < 0.15) return call(stats, k, 'GET', '/api/projects', api)
  if (a < 0.25) return call(stats, k, 'GET', `/api/projects/search?q=${pick(WORDS)}`, api)
  if (a < 0.4) return call(stats, k, 'GET', `/api/projects/${project}`, api)
  if (a < 0.55) return call(stats, k, 'GET', `/api/projects/${project}/tasks`, api)
  if (a < 0.65) {
    return call(
      stats,
      k,
      'GET',
      `/api/projects/${project}/tasks/${1 + Math.floor(random() * 30)}`,
      api,
    )
  }
  if (a < 0.7) {
    const body = random() < 0.1 ? {} : { title: 'Write the docs' }
    return call(stats, k, 'POST', `/api/projects/${project}/tasks`, { ...api, body })
  }
  if (a < 0.78) {
    return call(
      stats,
      k,
      'PATCH',
      `/api/projects/${project}/tasks/${1 + Math.floor(random() * 5)}`,
      {
        ...api,
        body: { done: true },
      },
    )
  }
  if (a < (heavy ? 0.92 : 0.84))
    return call(stats, k, 'GET', `/api/reports/burndown/${project}`, api)
  if (a < 0.9) return call(stats, k, 'POST', '/api/webhooks/dispatch', { ...api, body: {} })
  if (a < 0.93) return call(stats, k, 'POST', '/api/projects', { ...api, body: { name: 'Launch' } })
  return call(stats, k, 'GET', '/api/me', api)
}

async function anonymousAction(random, { urls, stats, signal }) {
  const a = random()
  if (a < 0.3 && urls.express !== undefined) {
    return call(stats, urls.express, 'GET', `/api/books?page=${1 + Math.floor(random() * 5)}`, {
      signal,
    })
  }
  if (a < 0.55 && urls.express !== undefined) {
    return call(stats, urls.express, 'GET', `/api/books/${1 + Math.floor(random() * 5000)}`, {
      signal,
    })
  }
  // Sign-ins, some with a wrong password.
  const user = USERS[Math.floor(random() * USERS.length)]
  const body = { name: user.name, password: random() < 0.2 ? 'guess' : user.password }
  const base = random() < 0.5 ? urls.express : urls.koa
  return call(stats, base ?? urls.express ?? urls.koa, 'POST', '/api/login', { body, signal })
}

async function scannerAction(random, { urls, stats, signal }) {
  const base = random() < 0.5 ? urls.express : urls.koa
  const path = SCANNED[Math.floor(random() * SCANNED.length)]
  return call(stats, base ?? urls.express ?? urls.koa, 'GET', path, { signal })
}

async function botAction(random, { user, urls, stats, signal }) {
  const token = user.token
  if (urls.express !== undefined && random() < 0.7) {
    return call(stats, urls.express, 'GET', '/api/stock', { token, signal })
  }
  return call(stats, urls.koa ?? urls.express, 'GET', '/api/projects', { token, signal })
}

/**
 * Sends the simulated users' requests to the apps at `urls` ({ express, koa },
 * either may be absent) until `seconds` have passed or `signal` aborts.
 * Returns what was sent: { requests, failed, byStatus }.
 */
export async function driveTraffic({ urls, seconds, signal, seed = 1 }) {
  checkLoopback(urls.express)
  checkLoopback(urls.koa)
  const stats = { requests: 0, failed: 0, byStatus: {}, lastError: undefined }
  const deadline = Date.now() + seconds * 1000
  const stop = new AbortController()
  const timer = setTimeout(() => stop.abort(), seconds * 1000)
  const onAbort = () => stop.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const loops = []
  let n = 0
  for (const profile of PROFILES) {
    const user = USERS.find((u) => u.name === profile.user)
    for (let i = 0; i < profile.loops; i++) {
      const random = seeded(seed * 1000 + n++)
      const ctx = { user, urls, stats, signal: stop.signal, orders: [], heavy: profile.heavy }
      const act = profile.scanner
        ? scannerAction
        : profile.bot
          ? botAction
          : user === undefined
            ? anonymousAction
            : customerAction
      loops.push(
        (async () => {
          while (!stop.signal.aborted && Date.now() < deadline) {
            await act(random, ctx)
            const [low, high] = profile.thinkMs
            await sleep(low + random() * (high - low))
          }
        })(),
      )
    }
  }
  try {
    await Promise.all(loops)
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
  return stats
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      express: { type: 'string' },
      koa: { type: 'string' },
      seconds: { type: 'string', default: '30' },
    },
  })
  if (values.express === undefined && values.koa === undefined) {
    console.error('usage: traffic.js --express URL --koa URL [--seconds N]')
    process.exit(2)
  }
  const stop = new AbortController()
  process.once('SIGINT', () => stop.abort())
  const stats = await driveTraffic({
    urls: { express: values.express, koa: values.koa },
    seconds: Number(values.seconds),
    signal: stop.signal,
  })
  console.log(JSON.stringify(stats))
}
