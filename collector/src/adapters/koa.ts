import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  Collector,
  handleOf,
  type DiscoveredRoute,
  type RoutemeterHandle,
} from '../core/collector.js'
import { resolveOptions, type RoutemeterOptions } from '../core/options.js'
import { remoteOf } from '../remote/index.js'

/*
 * Koa 2 and 3. @koa/router leaves the matched route's full template (router
 * prefixes and nested routers included) in ctx._matchedRoute, and keeps its
 * routes in router.stack, which is how endpoints are discovered.
 */

interface RouterLayer {
  path: string | RegExp
  methods: string[]
  /** the path's captures by this layer's pattern */
  captures?(path: string): string[]
}

interface KoaContext {
  req: IncomingMessage
  res: ServerResponse
  method?: string
  ip?: string
  app?: { proxy?: boolean }
  _matchedRoute?: string | RegExp
  /** @koa/router: the layers whose path matched, routes and router.use() middleware */
  matched?: RouterLayer[]
  /** the router: the captures of the last layer that ran */
  captures?: string[]
  path?: string
  routerPath?: string
  /** false: Koa leaves the response to the middleware (the remote API answers it) */
  respond?: boolean
  /** @koa/router: the matched route's parameters */
  params?: Record<string, string>
  /** a body parser's result */
  request?: { body?: unknown }
}

/** A Koa application, as far as the adapter needs one. */
export interface KoaApp {
  middleware: unknown[]
  callback: (...args: never[]) => unknown
  listen: (...args: never[]) => unknown
  handleRequest: (ctx: KoaContext, fnMiddleware: unknown) => unknown
  use: (...args: never[]) => unknown
}

export function isKoaApp(app: unknown): app is KoaApp {
  const candidate = app as Partial<KoaApp> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    Array.isArray(candidate.middleware) &&
    typeof candidate.callback === 'function' &&
    typeof candidate.handleRequest === 'function' &&
    typeof candidate.use === 'function'
  )
}

/** The routes of every @koa/router mounted on the app (nested routers are flattened into their parent). */
export function koaRoutes(app: KoaApp): DiscoveredRoute[] {
  const out: DiscoveredRoute[] = []
  for (const fn of app.middleware) {
    const router = (fn as { router?: { stack?: RouterLayer[] } }).router
    for (const layer of router?.stack ?? []) {
      const methods = layer.methods ?? []
      for (const method of methods) {
        // HEAD is added for every GET route: discover it only if it stands alone.
        if (method === 'HEAD' && methods.includes('GET')) continue
        out.push({ method, route: layer.path })
      }
    }
  }
  return out
}

/**
 * The matched route's template. @koa/router sets ctx._matchedRoute to the path
 * of each layer it runs, router.use() middleware included: when such a
 * middleware answers (a 401 from an auth check) before the route runs, the
 * template is taken from the last matched route layer instead.
 */
function koaRouteOf(ctx: KoaContext | undefined): string | RegExp | undefined {
  if (ctx === undefined) return undefined
  const { _matchedRoute: route, matched, method } = ctx
  if (route === undefined || !Array.isArray(matched) || method === undefined) return route
  if (matched.length > 1) {
    const ran = routeThatRan(ctx, matched, route, method)
    if (ran !== undefined) return ran
  }
  if (matched.some((layer) => layer.path === route && layer.methods.length > 0)) return route
  for (let i = matched.length - 1; i >= 0; i--) {
    if (matched[i]!.methods.includes(method)) return matched[i]!.path
  }
  return route
}

/**
 * koa-router 7 sets ctx._matchedRoute to the last route whose path matches
 * before any of them runs: when an earlier one answers (`/articles/feed`
 * before `/articles/:slug`), that is the wrong one. Each layer that runs
 * leaves its captures in ctx.captures, so the route that ran last is the last
 * one whose captures of the path are those. Newer routers set _matchedRoute
 * as each layer runs, and pass the first check. Undefined: not decided here.
 */
function routeThatRan(
  ctx: KoaContext,
  matched: RouterLayer[],
  route: string | RegExp,
  method: string,
): string | RegExp | undefined {
  // Only two routes of the method can be confused: no pattern is run otherwise.
  let routes = 0
  for (const layer of matched) if (layer.methods.includes(method)) routes++
  if (routes < 2) return undefined
  const captures = ctx.captures
  const path = ctx.routerPath ?? ctx.path
  if (!Array.isArray(captures) || typeof path !== 'string') return undefined
  const same = (layer: RouterLayer): boolean => {
    let theirs: unknown
    try {
      // koa-router 7's throws when the path no longer matches (rewritten after routing).
      theirs = layer.captures?.(path)
    } catch {
      return false
    }
    return (
      Array.isArray(theirs) &&
      theirs.length === captures.length &&
      theirs.every((value, i) => value === captures[i])
    )
  }
  let named = false
  for (const layer of matched) {
    if (layer.path !== route || !layer.methods.includes(method)) continue
    named = true
    if (same(layer)) return route
  }
  if (!named) return undefined
  for (let i = matched.length - 1; i >= 0; i--) {
    const layer = matched[i]!
    if (layer.methods.includes(method) && same(layer)) return layer.path
  }
  return undefined
}

const koaHooks = {
  routeOf(_req: IncomingMessage, ctx: KoaContext | undefined): string | RegExp | undefined {
    return koaRouteOf(ctx)
  },
  ipOf(_req: IncomingMessage, ctx: KoaContext | undefined): string | undefined {
    // ctx.ip honours X-Forwarded-For only when app.proxy is set.
    return ctx?.app?.proxy ? ctx.ip : undefined
  },
  subject: (req: IncomingMessage, ctx: KoaContext | undefined): unknown => ctx ?? req,
  paramsOf: (_req: IncomingMessage, ctx: KoaContext | undefined): unknown => ctx?.params,
}

/** The client's address as the app sees it (`ctx.ip` follows app.proxy); undefined if unreadable. */
function koaIp(ctx: KoaContext): string | undefined {
  try {
    return typeof ctx.ip === 'string' && ctx.ip !== '' ? ctx.ip : undefined
  } catch {
    return undefined
  }
}

/** Installs the collector on a Koa app: every request is timed before any middleware runs. */
export function bindKoa(app: KoaApp, options?: RoutemeterOptions): RoutemeterHandle {
  const resolved = resolveOptions(options)
  const collector = new Collector<KoaContext>(resolved, koaHooks)
  const remote = remoteOf(resolved, collector)
  const discover = (): void => collector.discoverFrom(() => koaRoutes(app))
  let discovered = false

  const handleRequest = app.handleRequest
  app.handleRequest = function routemeterHandleRequest(this: unknown, ctx, fnMiddleware) {
    // The remote API is answered ahead of the app's middleware, and not recorded.
    if (remote?.matches(ctx.req)) return remote.handle(ctx.req, ctx.res, undefined, koaIp(ctx))
    if (!discovered) {
      discovered = true
      discover()
    }
    collector.track(ctx.req, ctx.res, ctx)
    if (collector.attributing) {
      return collector.inRequestContext(ctx.res, () => handleRequest.call(this, ctx, fnMiddleware))
    }
    return handleRequest.call(this, ctx, fnMiddleware)
  }
  const listen = app.listen
  app.listen = function routemeterListen(this: unknown, ...args: never[]) {
    discover()
    return listen.apply(this, args)
  } as KoaApp['listen']
  setImmediate(discover).unref()
  return collector
}

export type KoaMiddleware = ((ctx: KoaContext, next: () => Promise<unknown>) => Promise<unknown>) &
  RoutemeterHandle

/** The explicit middleware: times requests from where it is registered. */
export function koaMiddleware(options?: RoutemeterOptions): KoaMiddleware {
  const resolved = resolveOptions(options)
  const collector = new Collector<KoaContext>(resolved, koaHooks)
  const remote = remoteOf(resolved, collector)
  const apps = new WeakSet<object>()
  const middleware = (ctx: KoaContext, next: () => Promise<unknown>): Promise<unknown> => {
    if (remote?.matches(ctx.req)) {
      ctx.respond = false
      return remote.handle(ctx.req, ctx.res, ctx.request?.body, koaIp(ctx))
    }
    const app = ctx.app as KoaApp | undefined
    if (app !== undefined && !apps.has(app) && isKoaApp(app)) {
      apps.add(app)
      collector.discoverFrom(() => koaRoutes(app))
    }
    collector.track(ctx.req, ctx.res, ctx)
    return collector.attributing ? collector.inRequestContext(ctx.res, next) : next()
  }
  return Object.assign(middleware, handleOf(collector))
}
