/**
 * What both example APIs serve: the users who call them (with the token they
 * send), and small in-memory data, the same at every start.
 */

/** The example APIs' customers. `history` drives the cost of the per-user computation. */
export const USERS = [
  { name: 'acme-corp', token: 'token-acme', password: 'acme', history: 4000, admin: true },
  { name: 'globex', token: 'token-globex', password: 'globex', history: 1200, admin: false },
  { name: 'initech', token: 'token-initech', password: 'initech', history: 300, admin: false },
  { name: 'umbrella', token: 'token-umbrella', password: 'umbrella', history: 8000, admin: false },
  { name: 'hooli', token: 'token-hooli', password: 'hooli', history: 60, admin: false },
  // An integration that polls the stock every few seconds.
  { name: 'inventory-sync', token: 'token-sync', password: 'sync', history: 10, admin: false },
]

const byToken = new Map(USERS.map((user) => [user.token, user]))

/** The user a request's `Authorization: Bearer <token>` header names, or undefined. */
export function userOfAuthorization(header) {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return undefined
  return byToken.get(header.slice('Bearer '.length))
}

export function userByPassword(name, password) {
  const user = USERS.find((u) => u.name === name)
  return user !== undefined && user.password === password ? user : undefined
}

/** mulberry32: the same data at every start. */
export function seeded(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const WORDS = [
  'river',
  'night',
  'garden',
  'iron',
  'silent',
  'paper',
  'winter',
  'glass',
  'north',
  'letters',
  'harbor',
  'machine',
  'orchard',
  'storm',
  'copper',
  'lantern',
  'salt',
  'echo',
  'meadow',
  'signal',
]

export function title(random, words = 3) {
  const parts = []
  for (let i = 0; i < words; i++) parts.push(WORDS[Math.floor(random() * WORDS.length)])
  const text = parts.join(' ')
  return text[0].toUpperCase() + text.slice(1)
}

/** Waits, as a query to a database or another service would. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A release number from the version (`1.1.0` -> 1.1): what changed between the demo's releases. */
export function release(version) {
  const [major = '1', minor = '0'] = (version ?? '1.0.0').split('.')
  return Number(major) + Number(minor) / 10
}

/**
 * CPU work whose cost grows with `size`, like scoring a user's history
 * against the catalogue. Returns a number so that it is not optimised away.
 */
export function score(size, candidates) {
  let total = 0
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < candidates; j++) total += Math.sqrt((i * 31 + j * 17) % 97)
  }
  return total
}
