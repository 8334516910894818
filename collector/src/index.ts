import type { RoutemeterHandle } from './core/collector.js'
import { describeValue, type RoutemeterOptions } from './core/options.js'
import { bindExpress, isExpressApp } from './adapters/express.js'
import { bindFastify, isFastifyApp } from './adapters/fastify.js'
import { bindHono, isHonoApp } from './adapters/hono.js'
import { bindKoa, isKoaApp } from './adapters/koa.js'
import { bindNest, isNestApp } from './adapters/nest.js'

/** An Express app as its types describe it: callable, with the prototype of its requests. */
type ExpressAppOf<Request> = ((...args: never[]) => unknown) & {
  request: Request
  response: unknown
}
/** A Koa app as its types describe it: it creates the contexts its middleware receives. */
interface KoaAppOf<Context> {
  middleware: unknown[]
  createContext(...args: never[]): Context
}

/**
 * Binds Routemeter to a Koa (2, 3), Express (4, 5), Fastify (4, 5), NestJS
 * (on Express or Fastify) or Hono (4, on @hono/node-server) app: every
 * request is timed from before the app's first middleware (Fastify: before
 * its routing and hooks) and recorded per endpoint into the SQLite file
 * `options.database`. `groupBy` and `getIp` receive Express's `req`, Koa's
 * `ctx`, Fastify's `request`, Hono's context `c`.
 */
export function bind<Request>(
  app: ExpressAppOf<Request>,
  options?: RoutemeterOptions<Request>,
): RoutemeterHandle
export function bind<Context>(
  app: KoaAppOf<Context>,
  options?: RoutemeterOptions<Context>,
): RoutemeterHandle
export function bind(app: object, options?: RoutemeterOptions): RoutemeterHandle
export function bind(app: unknown, options?: RoutemeterOptions): RoutemeterHandle {
  if (isExpressApp(app)) return bindExpress(app, options)
  if (isKoaApp(app)) return bindKoa(app, options)
  if (isFastifyApp(app)) return bindFastify(app, options)
  if (isNestApp(app)) return bindNest(app, options)
  if (isHonoApp(app)) return bindHono(app, options)
  throw new TypeError(
    `routemeter: bind(app) expects a Koa, Express, Fastify, NestJS or Hono application, got ${describeValue(app)}; ` +
      "for another server use createCollector() with track(req, res) on Node's request and response",
  )
}

export { expressMiddleware as express } from './adapters/express.js'
export { koaMiddleware as koa } from './adapters/koa.js'
export { createCollector } from './adapters/http.js'
export type { HttpCollector } from './adapters/http.js'
export type { ExpressMiddleware } from './adapters/express.js'
export type { KoaMiddleware } from './adapters/koa.js'
export type { RoutemeterHandle, CollectorStats, DiscoveredRoute } from './core/collector.js'
export type { RoutemeterOptions, RequestLike } from './core/options.js'
export type { RemoteOptions } from './remote/options.js'
export type { RetentionOptions, SamplingOptions } from './retention/policy.js'
export type { AppVersion } from './core/version.js'
export * from './schema/index.js'
