import type { IncomingMessage, ServerResponse } from 'node:http'
import { Collector, type FrameworkHooks, type RoutemeterHandle } from '../core/collector.js'
import { resolveOptions, type RoutemeterOptions } from '../core/options.js'
import { remoteOf } from '../remote/index.js'
import { isNodeRequest, isNodeResponse } from './http.js'

/*
 * Hono 4 served by @hono/node-server: a middleware for every path, the app's
 * first, reads Node's request and response from the context's bindings
 * (c.env.incoming, c.env.outgoing) and times them. The route is the one Hono
 * dispatched the request to (c.req.matchedRoutes at c.req.routeIndex); when a
 * middleware answered first (an auth check's 401), the route it was in front
 * of; none for a 404.
 */

interface HonoRoute {
  path: string
  /** 'ALL' for app.use() middleware and app.all() */
  method: string
  handler: unknown
}

/** Hono's context, as far as the adapter reads it. */
interface HonoContext {
  env?: { incoming?: unknown; outgoing?: unknown }
  req: {
    routeIndex: number
    /** deprecated in Hono 4.8 for the hono/route helper, which a dependency-free adapter cannot import */
    matchedRoutes: HonoRoute[]
    param(): unknown
  }
}

/** A Hono application, as far as the adapter needs one. */
export interface HonoApp {
  fetch: (...args: never[]) => unknown
  routes: HonoRoute[]
  use: (path: string, handler: (c: HonoContext, next: () => Promise<void>) => unknown) => unknown
  basePath: (...args: never[]) => unknown
}

export function isHonoApp(app: unknown): app is HonoApp {
  const candidate = app as Partial<HonoApp> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.fetch === 'function' &&
    Array.isArray(candidate.routes) &&
    typeof candidate.use === 'function' &&
    typeof candidate.basePath === 'function'
  )
}

/**
 * What @hono/node-server takes for a response already written to Node's (the
 * remote API's): a platform Response with its header. The server replaces the
 * global Response with a lighter class that would be written again; that
 * class's parent is the platform's.
 */
function alreadySent(): Response {
  const current = globalThis.Response
  const parent = Object.getPrototypeOf(current) as unknown
  const Platform =
    typeof parent === 'function' && parent !== Function.prototype
      ? (parent as typeof Response)
      : current
  return new Platform(null, { headers: { 'x-hono-already-sent': 'true' } })
}

const honoHooks: FrameworkHooks<HonoContext> = {
  routeOf(_req, c) {
    const routes = c?.req.matchedRoutes
    const index = c?.req.routeIndex ?? 0
    const ran = routes?.[index]
    if (routes === undefined || ran === undefined) return undefined
    if (ran.method !== 'ALL') return ran.path
    // A middleware answered, or nothing but middleware matched (a 404).
    return routes.slice(index + 1).find((route) => route.method !== 'ALL')?.path
  },
  ipOf: () => undefined,
  subject: (req, c) => c ?? req,
  paramsOf: (_req, c) => c?.req.param(),
}

/** Installs the collector on a Hono app; call it right after `new Hono()`, before any route. */
export function bindHono(app: HonoApp, options?: RoutemeterOptions): RoutemeterHandle {
  // Hono runs middleware in the order registered: one added after a route never sees its requests.
  if (app.routes.length > 0) {
    throw new TypeError(
      `routemeter: bind(hono) must come right after new Hono(), before any route or middleware; ` +
        `this app has ${app.routes.length} already (${app.routes[0]!.method} ${app.routes[0]!.path} first), whose requests would not be recorded`,
    )
  }
  const resolved = resolveOptions(options)
  const collector = new Collector<HonoContext>(resolved, honoHooks)
  const remote = remoteOf(resolved, collector)
  let refused = false
  let discovered = false
  const discover = (): void =>
    collector.discoverFrom(() =>
      app.routes
        .filter((route) => route.method !== 'ALL')
        .map((route) => ({ method: route.method, route: route.path })),
    )
  const middleware = async (
    c: HonoContext,
    next: () => Promise<void>,
  ): Promise<Response | undefined> => {
    const incoming = c.env?.incoming
    const outgoing = c.env?.outgoing
    if (!isNodeRequest(incoming) || !isNodeResponse(outgoing)) {
      if (!refused) {
        refused = true
        collector.report(
          new TypeError(
            'routemeter: bind(hono) records the requests @hono/node-server serves (it finds ' +
              "Node's request in c.env.incoming); these requests are not recorded",
          ),
          'track',
        )
      }
      await next()
      return undefined
    }
    if (remote?.matches(incoming)) {
      await remote.handle(incoming as IncomingMessage, outgoing as ServerResponse)
      return alreadySent()
    }
    if (!discovered) {
      discovered = true
      discover()
    }
    collector.track(incoming, outgoing, c)
    if (collector.attributing) await collector.inRequestContext(outgoing, next)
    else await next()
    return undefined
  }
  app.use('*', middleware)
  // Routes registered right after bind() appear without waiting for a request.
  setImmediate(discover).unref()
  return collector
}
