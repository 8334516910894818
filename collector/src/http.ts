import type { IncomingMessage, ServerResponse } from 'node:http'
import { Collector, handleOf, type DiscoveredRoute, type RoutemeterHandle } from './core.js'
import { resolveOptions, type RoutemeterOptions } from './options.js'

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
}

export function createCollector(options?: RoutemeterOptions): HttpCollector {
  const collector = new Collector(resolveOptions(options), {
    routeOf: (req) => (req as RoutedRequest)[kRoute],
    ipOf: () => undefined,
    subject: (req) => req,
  })
  return {
    track: (req, res) => collector.track(req, res),
    setRoute: (req, route) => {
      ;(req as RoutedRequest)[kRoute] = route
    },
    discover: (routes) => collector.discover(routes),
    ...handleOf(collector),
  }
}
