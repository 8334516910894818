import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import {
  Collector,
  type DiscoveredRoute,
  type FrameworkHooks,
  type RoutemeterHandle,
} from '../core/collector.js'
import { resolveOptions, type RoutemeterOptions } from '../core/options.js'
import { remoteOf } from '../remote/index.js'

/*
 * Fastify 4 and 5, through its own interfaces only: a 'request' listener
 * put ahead of Fastify's on the instance's server times the whole request
 * (routing, every hook, body parsing, the reply); an onRequest hook links
 * Node's request to Fastify's, whose routeOptions.url is the route's full
 * template (plugin prefixes included; none for a 404); onRoute lists the
 * routes registered after bind(), announced at onReady.
 */

const kFastifyRequest = Symbol('routemeter.fastifyRequest')

/** Fastify's request, as far as the adapter reads it. */
interface FastifyRequestLike {
  raw: IncomingMessage
  ip?: string
  params?: unknown
  /** Fastify >= 4.10 */
  routeOptions?: { url?: string }
  /** Fastify < 4.10 (deprecated later) */
  routerPath?: string
}

interface FastifyReplyLike {
  raw: ServerResponse
  hijack(): unknown
}

type LinkedRequest = IncomingMessage & { [kFastifyRequest]?: FastifyRequestLike }

interface RouteOptionsLike {
  method: string | string[]
  url: string
}

/** A Fastify instance, as far as the adapter needs one. */
export interface FastifyApp {
  server: Server
  addHook(name: string, hook: (...args: never[]) => unknown): unknown
  route: (...args: never[]) => unknown
  register: (...args: never[]) => unknown
  inject: (...args: never[]) => unknown
}

export function isFastifyApp(app: unknown): app is FastifyApp {
  const candidate = app as Partial<FastifyApp> | null
  return (
    (typeof candidate === 'object' || typeof candidate === 'function') &&
    candidate !== null &&
    typeof candidate.addHook === 'function' &&
    typeof candidate.route === 'function' &&
    typeof candidate.register === 'function' &&
    typeof candidate.inject === 'function' &&
    typeof candidate.server?.prependListener === 'function'
  )
}

const fastifyHooks: FrameworkHooks = {
  routeOf(req) {
    const request = (req as LinkedRequest)[kFastifyRequest]
    if (request === undefined) return undefined
    // A 404 has no route: routeOptions.url is undefined (Fastify 5) or absent.
    return request.routeOptions !== undefined ? request.routeOptions.url : request.routerPath
  },
  // request.ip follows the instance's trustProxy.
  ipOf: (req) => (req as LinkedRequest)[kFastifyRequest]?.ip,
  subject: (req) => (req as LinkedRequest)[kFastifyRequest] ?? req,
  paramsOf: (req) => (req as LinkedRequest)[kFastifyRequest]?.params,
}

/** Installs the collector on a Fastify instance; call it before the instance is ready. */
export function bindFastify(app: FastifyApp, options?: RoutemeterOptions): RoutemeterHandle {
  const resolved = resolveOptions(options)
  const collector = new Collector(resolved, fastifyHooks)
  const remote = remoteOf(resolved, collector)
  const routes: DiscoveredRoute[] = []

  try {
    app.addHook('onRoute', ((route: RouteOptionsLike) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      for (const method of methods) routes.push({ method: method.toUpperCase(), route: route.url })
    }) as never)
    app.addHook('onReady', ((done: () => void) => {
      // Fastify adds a HEAD route beside each GET (a prefix's '/' with a trailing
      // slash): it is listed only when it stands alone.
      const bare = (route: DiscoveredRoute['route']) => String(route).replace(/(.)\/$/, '$1')
      const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => bare(r.route)))
      collector.discover(routes.filter((r) => r.method !== 'HEAD' || !gets.has(bare(r.route))))
      done()
    }) as never)
    app.addHook('onRequest', ((
      request: FastifyRequestLike,
      reply: FastifyReplyLike,
      done: () => void,
    ) => {
      ;(request.raw as LinkedRequest)[kFastifyRequest] = request
      // The remote API is answered here, ahead of the app's hooks and handlers.
      if (remote?.matches(request.raw)) {
        reply.hijack()
        void remote.handle(request.raw, reply.raw, undefined, request.ip)
        return
      }
      done()
    }) as never)
  } catch (error) {
    throw new TypeError(
      `routemeter: bind(fastify) must be called before the instance is ready or listening (${(error as Error).message})`,
      { cause: error },
    )
  }
  // Ahead of Fastify's own listener: the time of routing and of every hook counts.
  app.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (remote?.matches(req)) return
    collector.track(req, res)
    // Fastify's listener runs next, in this same call: it runs in the request's context.
    if (collector.attributing) collector.enterRequestContext(res)
  })
  return collector
}
