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
}
