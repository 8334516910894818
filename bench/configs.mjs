/**
 * The configurations the overhead benchmark compares, per framework. Plain
 * JavaScript: the benchmark's server (server.mjs) runs under plain Node.
 */
export const CONFIGS = {
  express: [
    'bare',
    'routemeter-0',
    'routemeter-1',
    'prom-bundle',
    'swagger-stats',
    'status-monitor',
    'otel',
    'sqlite-batch',
  ],
  koa: ['bare', 'routemeter-0', 'routemeter-1', 'otel', 'sqlite-batch'],
  fastify: ['bare', 'routemeter-0', 'routemeter-1', 'fastify-metrics', 'sqlite-batch'],
}

/**
 * Level 2's configurations, counted by instructions only (bench/instructions.ts):
 * - routemeter-2: the endpoint at level 2, its requests never outliers;
 * - routemeter-1-beside-2: the endpoint at level 1 while another one is at level 2;
 * - routemeter-2-outliers: about half of the requests are outliers (factor 1.0001, no floor,
 *   no rate limit), to count what a capture costs;
 * - routemeter-2-no-ops, routemeter-1-beside-2-no-ops: the same two with outliers.operations
 *   off (no async context);
 * - routemeter-1-awaits, routemeter-2-awaits: a handler that awaits 100 promises, at
 *   level 1 and at level 2 (where requests run in an AsyncLocalStorage context).
 */
export const LEVEL2_CONFIGS = [
  'routemeter-2',
  'routemeter-1-beside-2',
  'routemeter-2-no-ops',
  'routemeter-1-beside-2-no-ops',
  'routemeter-2-outliers',
  'routemeter-1-awaits',
  'routemeter-2-awaits',
]

/**
 * Retention's configurations (bench/retention.ts): routemeter-1 samples raw
 * rows by default; routemeter-1-unsampled keeps every row (sampling: false).
 */
export const RETENTION_CONFIGS = ['routemeter-1-unsampled']

/**
 * Level 3's configurations (bench/profiles.ts), Express: the hello-world
 * endpoint does 1 ms of CPU work in a function of its own, at level 2, or at
 * level 3 while /other stays at level 2.
 */
export const PROFILE_CONFIGS = ['routemeter-2-cpu', 'routemeter-3-cpu']

/** Promises the '-awaits' configurations' handler awaits. */
export const AWAITS = 100
