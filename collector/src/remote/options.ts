/** The `remote` option: serve the metrics file to the desktop app over the app's own HTTP. */
export interface RemoteOptions {
  /** Bearer token the desktop app must send; at least 16 characters. Default: env `ROUTEMETER_TOKEN`. */
  token?: string
  /** Path under which the collector answers, ahead of the app's routes. Default `/routemeter`. */
  prefix?: string
}

export interface ResolvedRemote {
  token: string
  prefix: string
}

/** Environment variable read when the `remote` option carries no token. */
export const TOKEN_ENV = 'ROUTEMETER_TOKEN'
export const MIN_TOKEN_LENGTH = 16
export const DEFAULT_PREFIX = '/routemeter'

// One or more path segments of URL-safe characters, no trailing slash.
const PREFIX = /^(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/

/**
 * Validates `remote` once, at bind time: `true` or `{}` take the token from
 * the environment, and remote access without a usable token is refused
 * rather than served unauthenticated.
 */
export function resolveRemote(
  value: unknown,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedRemote | undefined {
  if (value === undefined || value === false) return undefined
  if (value !== true && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new TypeError(
      'routemeter: option "remote" must be true or an object { token?, prefix? }, ' +
        `got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    )
  }
  const o = (value === true ? {} : value) as Record<string, unknown>
  for (const name of Object.keys(o)) {
    if (name !== 'token' && name !== 'prefix') {
      throw new TypeError(`routemeter: unknown option "remote.${name}"`)
    }
  }
  if (o.token !== undefined && typeof o.token !== 'string') {
    throw new TypeError(`routemeter: option "remote.token" must be a string, got ${typeof o.token}`)
  }
  const token = o.token ?? env[TOKEN_ENV] ?? ''
  if (token === '') {
    throw new TypeError(
      `routemeter: option "remote.token" is required to serve metrics remotely: ` +
        `give remote: { token } or set ${TOKEN_ENV}`,
    )
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new TypeError(
      `routemeter: option "remote.token" must be at least ${MIN_TOKEN_LENGTH} characters ` +
        `(got ${token.length}${o.token === undefined ? `, from ${TOKEN_ENV}` : ''})`,
    )
  }
  // The header is read as "Bearer <token>": a token with a space in it could never match.
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\s\x00-\x1f\x7f]/.test(token)) {
    throw new TypeError(
      `routemeter: option "remote.token" must not contain white space or control characters` +
        `${o.token === undefined ? ` (from ${TOKEN_ENV})` : ''}: it travels as "Authorization: Bearer <token>"`,
    )
  }
  const prefix = o.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(
      'routemeter: option "remote.prefix" must be a path such as "/routemeter" ' +
        `(starting with "/", no trailing "/", no query), got ${JSON.stringify(prefix)}`,
    )
  }
  return { token, prefix }
}
