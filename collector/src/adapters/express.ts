import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import {
  Collector,
  handleOf,
  FIELD_KEY,
  routeToString,
  type DiscoveredRoute,
  type RoutemeterHandle,
} from '../core/collector.js'
import { resolveOptions, type RoutemeterOptions } from '../core/options.js'
import { remoteOf } from '../remote/index.js'

/*
 * Express 4 and 5 keep routes in a tree of routers. A route knows its own
 * path but not the mount paths above it, so the adapter walks the tree,
 * writes each route's full template on the route object, and reads it back
 * from `req.route` when the response ends.
 */

const kTemplate = Symbol('routemeter.template')

type RoutePath = string | RegExp | readonly unknown[]

interface ExpressRoute {
  path: RoutePath
  methods?: Record<string, boolean>
  [kTemplate]?: string
}

interface ExpressLayer {
  route?: ExpressRoute
  handle?: unknown
  /** router 2 (Express 5): the path given to use() */
  rawPath?: RoutePath
  /** router 2: mounted at "/" */
  slash?: boolean
  /** Express 4 */
  regexp?: RegExp & { fast_slash?: boolean }
  keys?: Array<{ name: string | number }>
}

interface ExpressRouter {
  stack: ExpressLayer[]
}

/** The Express request as the adapter reads it. */
interface ExpressRequest extends IncomingMessage {
  route?: ExpressRoute
  baseUrl?: string
  ip?: string
  /** the app handling the request: a mounted sub-app while inside it */
  app?: ExpressApp & { enabled?(setting: string): boolean }
}

/** An Express application, as far as the adapter needs one. */
export interface ExpressApp {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void
  handle: (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void
  use: (...args: never[]) => unknown
  set: (...args: never[]) => unknown
  listen: (...args: never[]) => unknown
  router?: unknown
  _router?: unknown
  /** Express 4 only: makes `_router` */
  lazyrouter?: unknown
  /** set by app.use(path, subApp) on the sub-app */
  mountpath?: unknown
  parent?: ExpressApp
}

export function isExpressApp(app: unknown): app is ExpressApp {
  if (typeof app !== 'function') return false
  const candidate = app as Partial<ExpressApp>
  return (
    typeof candidate.handle === 'function' &&
    typeof candidate.use === 'function' &&
    typeof candidate.set === 'function' &&
    typeof candidate.listen === 'function'
  )
}

function isRouter(value: unknown): value is ExpressRouter {
  return typeof value === 'function' && Array.isArray((value as Partial<ExpressRouter>).stack)
}

/** The app's root router, if it has one yet. */
function rootRouter(app: ExpressApp): ExpressRouter | undefined {
  const own = app._router
  if (own !== undefined) return isRouter(own) ? own : undefined
  // Express 4 makes `_router` at its first route, and its `app.router` getter throws.
  if (typeof app.lazyrouter === 'function') return undefined
  // Express 5's `app.router` getter makes the router on first read: an empty one, harmless.
  const router: unknown = Reflect.get(app, 'router')
  return isRouter(router) ? router : undefined
}

/** The end of the group that opens at `source[open]` (the index of its ')'), or -1. */
function groupEnd(source: string, open: number): number {
  let depth = 0
  for (let i = open; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') i++
    else if (c === '(') depth++
    else if (c === ')' && --depth === 0) return i
  }
  return -1
}

/**
 * Express 4 keeps only a RegExp for mount paths (path-to-regexp 0.1): the
 * template it was made from (`/t/:tenant` for `/t/:tenant(\\d+)` too,
 * `[/a,/b/:c]` for an array), or undefined when a path was not a plain
 * string of segments and parameters.
 */
export function pathFromRegExp(layer: ExpressLayer): string | undefined {
  const regexp = layer.regexp
  if (regexp === undefined) return undefined
  if (regexp.fast_slash) return ''
  const names = (layer.keys ?? []).map((key) => key.name)
  // An array's paths are joined by "|", each from its own "^".
  const parts = regexp.source.split('|^').map((part) => pathOfSource(part, names))
  if (parts.some((part) => part === undefined)) return undefined
  return parts.length === 1 ? parts[0] : `[${parts.join(',')}]`
}

/** One path's template from its path-to-regexp 0.1 source; takes its parameters' names from `names`. */
function pathOfSource(regexpSource: string, names: Array<string | number>): string | undefined {
  const source = regexpSource.replace(/^\^/, '').replace(/\\\/\?\(\?=\\\/\|\$\)$/, '')
  let path = ''
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!
    // A parameter: "(?:\/(capture))" and an optional "?", as path-to-regexp writes it.
    if (source.startsWith('(?:\\/(', i)) {
      const end = groupEnd(source, i)
      const name = names.shift()
      if (end === -1 || typeof name !== 'string') return undefined
      const optional = source[end + 1] === '?'
      path += `/:${name}${optional ? '?' : ''}`
      i = optional ? end + 1 : end
    } else if (c === '\\') {
      path += source[++i] ?? ''
    } else if ('()[]?*+^$|{}.'.includes(c)) {
      return undefined
    } else path += c
  }
  return path
}

/**
 * The template of a mount layer's path. Where Express 4 made it from a RegExp,
 * an array or a wildcard, the RegExp itself stands for it: one endpoint per
 * route, never one per URL.
 */
function mountPath(layer: ExpressLayer): string | undefined {
  if (layer.slash) return ''
  if (layer.rawPath !== undefined) {
    const path = routeToString(layer.rawPath)
    return path === '/' ? '' : path
  }
  if (layer.regexp === undefined) return undefined
  return pathFromRegExp(layer) ?? String(layer.regexp)
}

/**
 * The template of the path an app is mounted at: a sub-app's app.use() paths
 * up to the root app ('' for the root app), or undefined if one is not a string.
 */
function mountTemplate(app: ExpressApp): string | undefined {
  let prefix = ''
  for (let current = app; current.parent !== undefined; current = current.parent) {
    const mount = current.mountpath
    if (typeof mount !== 'string' && !(mount instanceof RegExp) && !Array.isArray(mount)) {
      return undefined
    }
    const path = routeToString(mount as RoutePath)
    prefix = joinPaths(path === '/' ? '' : path, prefix)
  }
  return prefix
}

/** The routes of an app (a mounted sub-app too), their templates written from its mount path. */
function walkApp(app: ExpressApp | undefined): DiscoveredRoute[] {
  const router = app && rootRouter(app)
  const prefix = app && mountTemplate(app)
  return router !== undefined && prefix !== undefined ? walkRoutes(router, prefix) : []
}

export function joinPaths(prefix: string, path: string): string {
  if (prefix === '') return path
  if (path === '' || path === '/') return prefix
  return prefix.replace(/\/$/, '') + (path.startsWith('/') ? path : `/${path}`)
}

/** Walks the router tree: writes each route's full template, and lists the routes. */
export function walkRoutes(
  router: ExpressRouter,
  prefix = '',
  out: DiscoveredRoute[] = [],
): DiscoveredRoute[] {
  for (const layer of router.stack) {
    const route = layer.route
    if (route !== undefined) {
      const template = joinPaths(prefix, routeToString(route.path))
      route[kTemplate] = template
      for (const [method, enabled] of Object.entries(route.methods ?? {})) {
        if (enabled && method !== '_all')
          out.push({ method: method.toUpperCase(), route: template })
      }
    } else if (isRouter(layer.handle)) {
      const mount = mountPath(layer)
      // An unknown mount path: leave its routes to the request-time fallback.
      if (mount !== undefined) walkRoutes(layer.handle, joinPaths(prefix, mount), out)
    }
  }
  return out
}

function expressHooks(walk: (req: IncomingMessage) => void) {
  const retried = new WeakSet<ExpressRoute>()
  return {
    routeOf(req: IncomingMessage): string | undefined {
      // Keyed: a named load misses V8's caches on Express's requests (see FIELD_KEY).
      const route = (req as ExpressRequest)[FIELD_KEY.route]
      if (route === undefined) return undefined
      if (route[kTemplate] === undefined && !retried.has(route)) {
        // A route added after the last walk, or in a mounted sub-app: walk again, once per route.
        retried.add(route)
        walk(req)
      }
      // Not reachable by any walk: the URL's mount point and the route.
      return (
        route[kTemplate] ??
        joinPaths((req as ExpressRequest).baseUrl ?? '', routeToString(route.path))
      )
    },
    ipOf(req: IncomingMessage): string | undefined {
      const request = req as ExpressRequest
      // req.ip follows the app's "trust proxy" setting; the socket's address is cheaper otherwise.
      // Express keeps req.app on the request's prototype (app.request), which is the same
      // object for every request: reading it there does not miss V8's caches (see FIELD_KEY).
      const prototype = Object.getPrototypeOf(request) as { app?: ExpressRequest['app'] } | null
      const app = prototype?.app ?? request.app
      return app?.enabled?.('trust proxy') ? request.ip : undefined
    },
    subject: (req: IncomingMessage): unknown => req,
    paramsOf: (req: IncomingMessage): unknown => (req as { params?: unknown }).params,
  }
}

/**
 * The client's address as Express's `req.ip` would give it, read before
 * Express has seen the request: X-Forwarded-For through the app's compiled
 * "trust proxy" function, as the proxy-addr package does.
 */
function trustedIp(app: ExpressApp, req: IncomingMessage): string | undefined {
  const socketAddress = req.socket?.remoteAddress
  try {
    const trust = (app as { get?: (setting: string) => unknown }).get?.('trust proxy fn')
    if (typeof trust !== 'function' || socketAddress === undefined) return socketAddress
    const header = req.headers['x-forwarded-for']
    const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((address) => address.trim())
      .filter((address) => address !== '')
      .reverse()
    const addresses = [socketAddress, ...forwarded]
    for (let i = 0; i < addresses.length - 1; i++) {
      if (!(trust as (address: string, hop: number) => boolean)(addresses[i]!, i)) {
        return addresses[i]
      }
    }
    return addresses[addresses.length - 1]
  } catch {
    return socketAddress
  }
}

/** Installs the collector on an Express app, ahead of every middleware. */
export function bindExpress(
  app: ExpressApp,
  options?: RoutemeterOptions,
  /** the server that will serve the app when it is not app.listen's (NestJS makes its own) */
  server?: Server,
): RoutemeterHandle {
  const resolved = resolveOptions(options)
  const discover = (): void => collector.discoverFrom(() => walkApp(app))
  const collector: Collector = new Collector(
    resolved,
    expressHooks((req) => {
      discover()
      // Inside a mounted sub-app, req.app is the sub-app.
      const current = (req as ExpressRequest).app
      if (current !== undefined && current !== app) collector.discoverFrom(() => walkApp(current))
    }),
  )
  let discovered = false
  const remote = remoteOf(resolved, collector)

  const handle = app.handle
  app.handle = function routemeterHandle(this: unknown, req, res, next) {
    // The remote API is answered ahead of the app's routing, and not recorded.
    if (remote?.matches(req)) return void remote.handle(req, res, undefined, trustedIp(app, req))
    if (!discovered) {
      discovered = true
      discover()
    }
    collector.track(req, res)
    if (collector.attributing) {
      return collector.inRequestContext(res, () => handle.call(this, req, res, next))
    }
    return handle.call(this, req, res, next)
  }
  const listen = app.listen
  app.listen = function routemeterListen(this: unknown, ...args: never[]) {
    discover()
    return listen.apply(this, args)
  } as ExpressApp['listen']
  server?.once('listening', discover)
  // Routes registered right after bind() appear without waiting for a request.
  setImmediate(discover).unref()
  return collector
}

export type ExpressMiddleware = ((
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) &
  RoutemeterHandle

/** The explicit middleware: times requests from where it is registered. */
export function expressMiddleware(options?: RoutemeterOptions): ExpressMiddleware {
  const resolved = resolveOptions(options)
  const apps = new WeakSet<object>()
  // The app is known only from its requests: Express sets req.app.
  const walk = (req: IncomingMessage): void =>
    collector.discoverFrom(() => walkApp((req as ExpressRequest).app))
  const collector: Collector = new Collector(resolved, expressHooks(walk))
  const remote = remoteOf(resolved, collector)
  const middleware = (
    req: IncomingMessage,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void => {
    // A body parser registered earlier may have read the body already: it is in req.body.
    if (remote?.matches(req)) {
      // Express has made this an Express request: req.ip follows "trust proxy".
      const ip = (req as ExpressRequest).ip
      return void remote.handle(req, res, (req as { body?: unknown }).body, ip)
    }
    const app = (req as { app?: object }).app
    if (app !== undefined && !apps.has(app)) {
      apps.add(app)
      walk(req)
    }
    collector.track(req, res)
    if (collector.attributing) collector.inRequestContext(res, next)
    else next()
  }
  return Object.assign(middleware, handleOf(collector))
}
