/** The renderer's content security policy and the files the app protocol may serve. */
import { isAbsolute, join, normalize, relative } from 'node:path'

/** Scripts only from the app itself; ApexCharts needs inline styles. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** The renderer is served from `routemeter://app/` (module scripts need a real origin). */
export const APP_SCHEME = 'routemeter'
export const APP_ORIGIN = `${APP_SCHEME}://app`

/** The file under `root` that a request path names, or null when it would leave `root`. */
export function staticFile(root: string, urlPath: string): string | null {
  let decoded: string
  try {
    decoded = decodeURIComponent(urlPath)
  } catch {
    return null
  }
  if (decoded.includes('\0')) return null
  const inside = normalize(decoded === '/' || decoded === '' ? '/index.html' : decoded)
  const file = join(root, inside)
  const rel = relative(root, file)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return null
  return file
}

/** True for URLs the window may show: the app itself, nothing else. */
export function isAppUrl(url: string, devServerUrl: string | undefined): boolean {
  if (url.startsWith(`${APP_ORIGIN}/`)) return true
  return devServerUrl !== undefined && url.startsWith(devServerUrl)
}
