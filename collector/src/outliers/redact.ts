/* What an outlier keeps of a request's headers and URL: secrets replaced, sizes bounded. */
import type { IncomingMessage } from 'node:http'

export const REDACTED = '[redacted]'
/** Longest header value or URL kept, in UTF-16 units. */
const MAX_VALUE_LENGTH = 2000
/** Most headers kept. */
const MAX_HEADERS = 100

function cut(value: string): string {
  return value.length > MAX_VALUE_LENGTH ? `${value.slice(0, MAX_VALUE_LENGTH)}…` : value
}

/** The request's headers, lower-case names, with the secret ones redacted. */
export function redactedHeaders(
  req: IncomingMessage,
  secret: ReadonlySet<string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  let kept = 0
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue
    if (kept++ >= MAX_HEADERS) break
    out[name] = secret.has(name)
      ? REDACTED
      : Array.isArray(value)
        ? value.map(cut)
        : cut(String(value))
  }
  return out
}

/** The URL (path and query), with the values of secret query parameters redacted. */
export function redactedUrl(url: string, secret: ReadonlySet<string>): string {
  const q = url.indexOf('?')
  if (q === -1) return cut(url)
  const pairs = url.slice(q + 1).split('&')
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!
    const eq = pair.indexOf('=')
    const raw = eq === -1 ? pair : pair.slice(0, eq)
    let name: string
    try {
      name = decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase()
    } catch {
      name = raw.toLowerCase()
    }
    if (secret.has(name)) pairs[i] = `${raw}=${REDACTED}`
  }
  return cut(`${url.slice(0, q)}?${pairs.join('&')}`)
}

/** A framework's route parameters as strings (at most MAX_HEADERS of them). */
export function paramStrings(params: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (params === null || typeof params !== 'object') return out
  let kept = 0
  for (const [name, value] of Object.entries(params as Record<string, unknown>)) {
    if (kept++ >= MAX_HEADERS) break
    out[name] = cut(String(value))
  }
  return out
}
