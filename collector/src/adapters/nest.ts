import type { Server } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { markUnmatched, type RoutemeterHandle } from '../core/collector.js'
import { describeValue, type RoutemeterOptions } from '../core/options.js'
import { bindExpress, isExpressApp } from './express.js'
import { bindFastify, isFastifyApp } from './fastify.js'

/*
 * NestJS: a NestApplication runs on an Express or a Fastify instance (its
 * HTTP adapter's), to which Nest hands every route with its full path (global
 * prefix, controller path, version). Binding that instance times the requests
 * as for the framework itself; guards and exception filters answer through it,
 * so the status recorded is the one the client got.
 */

type NotFoundHandler = (req: IncomingMessage, res: unknown, next?: unknown) => unknown

interface NestHttpAdapter {
  getInstance(): unknown
  /** registers Nest's not-found handler at init: on Express a route of its own (`*path`) */
  setNotFoundHandler?: (handler: NotFoundHandler, ...rest: never[]) => unknown
}

/** A NestJS application, as far as the adapter needs one. */
export interface NestApp {
  getHttpAdapter(): NestHttpAdapter
  getHttpServer(): unknown
  init: (...args: never[]) => unknown
}

export function isNestApp(app: unknown): app is NestApp {
  const candidate = app as Partial<NestApp> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.getHttpAdapter === 'function' &&
    typeof candidate.getHttpServer === 'function' &&
    typeof candidate.init === 'function'
  )
}

/** Binds the Nest application's Express or Fastify instance; call it before app.listen(). */
export function bindNest(app: NestApp, options?: RoutemeterOptions): RoutemeterHandle {
  const adapter = app.getHttpAdapter()
  const instance = adapter.getInstance()
  if (isExpressApp(instance)) {
    // Nest's not-found handler is an Express route (`{prefix}/*path`): what it answers matched nothing.
    const setNotFoundHandler = adapter.setNotFoundHandler
    if (typeof setNotFoundHandler === 'function') {
      adapter.setNotFoundHandler = function routemeterNotFound(handler, ...rest) {
        const marking: NotFoundHandler = (req, res, next) => {
          markUnmatched(req)
          return handler(req, res, next)
        }
        return setNotFoundHandler.call(this, marking, ...rest)
      }
    }
    // Nest serves the Express app from a server of its own: routes are listed when it listens.
    return bindExpress(instance, options, app.getHttpServer() as Server)
  }
  if (isFastifyApp(instance)) return bindFastify(instance, options)
  throw new TypeError(
    `routemeter: bind(app) supports NestJS on Express or Fastify, got a Nest application on ${describeValue(instance)}`,
  )
}
