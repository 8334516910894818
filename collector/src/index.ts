import type { RoutemeterHandle } from './core/collector.js'
import { describeValue, type RoutemeterOptions } from './core/options.js'
import { bindExpress, isExpressApp } from './adapters/express.js'
import { bindKoa, isKoaApp } from './adapters/koa.js'

/**
 * Binds Routemeter to a Koa (2, 3) or Express (4, 5) app: every request is
 * timed from before the app's first middleware and recorded per endpoint
 * into the SQLite file `options.database`.
 */
export function bind(app: unknown, options?: RoutemeterOptions): RoutemeterHandle {
  if (isExpressApp(app)) return bindExpress(app, options)
  if (isKoaApp(app)) return bindKoa(app, options)
  throw new TypeError(
    `routemeter: bind(app) expects a Koa or Express application, got ${describeApp(app)}; ` +
      "for another server use createCollector() with track(req, res) on Node's request and response",
  )
}

/** What bind() got, in its error message: a framework it does not support is named. */
function describeApp(app: unknown): string {
  if (typeof app === 'object' && app !== null) {
    const fields = app as Record<string, unknown>
    if (typeof fields.addHook === 'function' && typeof fields.register === 'function') {
      return 'a Fastify instance (not supported by bind yet: call track(request.raw, reply.raw) in an onRequest hook)'
    }
  }
  return describeValue(app)
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
