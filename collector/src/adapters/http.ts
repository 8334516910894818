import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  Collector,
  handleOf,
  type DiscoveredRoute,
  type RoutemeterHandle,
} from '../core/collector.js'
import { describeValue, resolveOptions, type RoutemeterOptions } from '../core/options.js'
import { remoteOf } from '../remote/index.js'

const kRoute = Symbol('routemeter.route')

type RoutedRequest = IncomingMessage & { [kRoute]?: string | RegExp }

/** The collector for a plain `http.Server` handler, or a framework without an adapter. */
export interface HttpCollector extends RoutemeterHandle {
  /** Starts timing a request; call it first thing in the handler. */
  track(req: IncomingMessage, res: ServerResponse): void
  /** Names the route template the request matched, e.g. "/users/:id". Unnamed requests share the unmatched endpoint. */
  setRoute(req: IncomingMessage, route: string | RegExp): void
  /** Lists routes so that they appear in the endpoint table before their first request. */
  discover(routes: Iterable<DiscoveredRoute>): void
  /**
   * With the `remote` option: answers a request of the remote API and returns
   * true (the handler must then leave the response alone); false otherwise.
   */
  handleRemote(req: IncomingMessage, res: ServerResponse): boolean
}

export function isNodeRequest(req: unknown): req is IncomingMessage {
  const fields = req as Record<string, unknown> | null
  return typeof fields?.on === 'function' && typeof fields.headers === 'object'
}

export function isNodeResponse(res: unknown): res is ServerResponse {
  const fields = res as Record<string, unknown> | null
  return typeof fields?.on === 'function' && typeof fields.setHeader === 'function'
}

export function createCollector(options?: RoutemeterOptions): HttpCollector {
  const resolved = resolveOptions(options)
  const collector = new Collector(resolved, {
    routeOf: (req) => (req as RoutedRequest)[kRoute],
    ipOf: () => undefined,
    subject: (req) => req,
  })
  const remote = remoteOf(resolved, collector)
  let refusedObjects = false
  return {
    track: (req, res) => {
      // A framework's own objects (Fastify's request and reply, say) are not Node's: say so, once.
      if (!isNodeRequest(req) || !isNodeResponse(res)) {
        if (!refusedObjects) {
          refusedObjects = true
          collector.report(
            new TypeError(
              `routemeter: track(req, res) needs Node's IncomingMessage and ServerResponse, got ` +
                `${describeValue(req)} and ${describeValue(res)}; with Fastify pass request.raw ` +
                'and reply.raw. These requests are not recorded.',
            ),
            'track',
          )
        }
        return
      }
      // The remote API's requests are not the app's traffic.
      if (remote?.matches(req)) return
      collector.track(req, res)
      // The handling goes on after track() returns: the request's context is entered here.
      if (collector.attributing) collector.enterRequestContext(res)
    },
    handleRemote: (req, res) => {
      if (remote === undefined || !remote.matches(req)) return false
      void remote.handle(req, res)
      return true
    },
    setRoute: (req, route) => {
      ;(req as RoutedRequest)[kRoute] = route
    },
    discover: (routes) => collector.discover(routes),
    ...handleOf(collector),
  }
}
