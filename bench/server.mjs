/**
 * One benchmark server: a hello-world Express 5, Koa 3 or Fastify 5 app with
 * one way of recording requests, alone in its process (the runner pins it to a core).
 *
 *   node bench/server.mjs <express|koa|fastify> <config> [--db FILE] [--max-buffered N] [--time-scale N]
 *
 * --time-scale N multiplies the recorders' timers (Routemeter's flush and level
 * poll, the batch middleware's flush): under callgrind a request takes about
 * 50 times as long, and the timers scale with it so that a batch holds as
 * many requests as it would at full speed.
 *
 * Prints `listening <port>` once it listens on 127.0.0.1; on SIGUSR2 it writes
 * what its recorder holds and prints `flushed`; on SIGTERM it stops and prints
 * `stats <json>` (the collector's counts for Routemeter configs).
 *
 * Packages are loaded with require() after the configuration is chosen: the
 * OpenTelemetry instrumentations patch modules as they are required, so they
 * must be registered before http, express and koa are loaded.
 */
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { AWAITS, CONFIGS, LEVEL2_CONFIGS, PROFILE_CONFIGS, RETENTION_CONFIGS } from './configs.mjs'

const require = createRequire(import.meta.url)

/** OpenTelemetry's http + framework instrumentation, metrics only, read in process every second. */
function startOpenTelemetry(framework) {
  const { context, metrics } = require('@opentelemetry/api')
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
  const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics')
  const { registerInstrumentations } = require('@opentelemetry/instrumentation')
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http')
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const collected = { exports: 0, points: 0, routes: [] }
  // Keeps nothing: what is measured is the cost of recording and collecting.
  const exporter = {
    export(resourceMetrics, done) {
      collected.exports++
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          collected.points += metric.dataPoints.length
          for (const point of metric.dataPoints) {
            const route = point.attributes['http.route']
            if (route !== undefined && !collected.routes.includes(route))
              collected.routes.push(route)
          }
        }
      }
      done({ code: 0 })
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  }
  const provider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1000 })],
  })
  metrics.setGlobalMeterProvider(provider)
  const frameworkInstrumentation =
    framework === 'express'
      ? new (require('@opentelemetry/instrumentation-express').ExpressInstrumentation)()
      : new (require('@opentelemetry/instrumentation-koa').KoaInstrumentation)()
  registerInstrumentations({
    instrumentations: [new HttpInstrumentation(), frameworkInstrumentation],
    meterProvider: provider,
  })
  return () => ({ ...collected })
}

/** The plain alternative: a middleware that batches rows into better-sqlite3 every 200 ms. */
function sqliteBatch(database, timeScale) {
  const Database = require('better-sqlite3')
  const db = new Database(database)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS request (
    id INTEGER PRIMARY KEY, time INTEGER NOT NULL, method TEXT NOT NULL, route TEXT NOT NULL,
    status INTEGER NOT NULL, duration_us INTEGER NOT NULL)`)
  const insert = db.prepare(
    'INSERT INTO request (time, method, route, status, duration_us) VALUES (?, ?, ?, ?, ?)',
  )
  const writeAll = db.transaction((rows) => {
    for (const r of rows) insert.run(r.time, r.method, r.route, r.status, r.durationUs)
  })
  let rows = []
  let written = 0
  const flush = () => {
    if (rows.length === 0) return
    const batch = rows
    rows = []
    writeAll(batch)
    written += batch.length
  }
  setInterval(flush, 200 * timeScale).unref()
  return {
    push: (row) => rows.push(row),
    flush,
    close: () => {
      flush()
      db.close()
      return { written }
    },
  }
}

/** Outliers the collector wrote into its file. */
function outliersIn(database) {
  const Database = require('better-sqlite3')
  const db = new Database(database, { readonly: true })
  try {
    return db.prepare('SELECT count(*) FROM outlier').pluck().get()
  } finally {
    db.close()
  }
}

/** Busy for `ms` of CPU: what level 3's profile of the endpoint should find. */
function cpuWork(ms) {
  const end = performance.now() + ms
  let found = 0
  for (let n = 2; performance.now() < end; n++) {
    let prime = true
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false
        break
      }
    }
    if (prime) found++
  }
  return found
}

function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      db: { type: 'string' },
      'max-buffered': { type: 'string' },
      'time-scale': { type: 'string' },
      // the collector's `retention` option, as JSON
      retention: { type: 'string' },
    },
  })
  const [framework, config] = positionals
  if (
    !CONFIGS[framework]?.includes(config) &&
    !LEVEL2_CONFIGS.includes(config) &&
    !RETENTION_CONFIGS.includes(config) &&
    !PROFILE_CONFIGS.includes(config)
  ) {
    throw new Error(
      `usage: server.mjs <express|koa|fastify> <config>; configs: ${JSON.stringify(CONFIGS)}, ${LEVEL2_CONFIGS.join(', ')}`,
    )
  }
  const awaits = config.endsWith('-awaits') ? AWAITS : 0
  const cpuMs = config.endsWith('-cpu') ? 1 : 0
  /** The hello-world handler's work: none, awaiting AWAITS promises, or CPU in a named function. */
  const work = async () => {
    for (let i = 0; i < awaits; i++) await Promise.resolve(i)
    if (cpuMs > 0) cpuWork(cpuMs)
  }
  const database = values.db ?? `/tmp/routemeter-bench-${process.pid}.db`
  const timeScale = Number(values['time-scale'] ?? 1)
  const otelStats = config === 'otel' ? startOpenTelemetry(framework) : undefined
  const batch = config === 'sqlite-batch' ? sqliteBatch(database, timeScale) : undefined
  let routemeter
  const bindRoutemeter = (app) => {
    const { bind } = require('routemeter')
    routemeter = bind(app, {
      database,
      version: 'bench',
      defaultLevel:
        config === 'routemeter-0'
          ? 0
          : config.startsWith('routemeter-2') || config.startsWith('routemeter-3')
            ? 2
            : 1,
      // Level 2's sweep, scaled like the other timers (50 ms at full speed).
      outliers: {
        sweepInterval: 50 * timeScale,
        // The floor scales too: under callgrind a GC pause passes 50 ms, and would be an outlier.
        ...(config === 'routemeter-2-outliers'
          ? { factor: 1.0001, minDuration: 0, maxPerMinute: 1e9 }
          : { minDuration: 50 * timeScale }),
        ...(config.endsWith('-no-ops') ? { operations: false } : {}),
      },
      ...(config.endsWith('-unsampled') ? { sampling: false } : {}),
      ...(values.retention === undefined ? {} : { retention: JSON.parse(values.retention) }),
      ...(values['max-buffered'] === undefined
        ? {}
        : { maxBufferedRows: Number(values['max-buffered']) }),
      // The collector's default intervals, scaled.
      ...(timeScale === 1
        ? {}
        : { flushInterval: 250 * timeScale, levelPollInterval: 1000 * timeScale }),
    })
  }

  const http = require('node:http')
  let server
  /** resolves when the app can take requests (Fastify loads its plugins first) */
  let ready = Promise.resolve()
  if (framework === 'fastify') {
    const app = require('fastify')({ logger: false })
    if (config.startsWith('routemeter-')) bindRoutemeter(app)
    if (config === 'fastify-metrics') {
      // Prometheus histograms per route, served at /metrics (as prom-bundle for Express).
      app.register(require('fastify-metrics').default, { endpoint: '/metrics' })
    }
    if (batch !== undefined) {
      app.decorateRequest('startedAt', 0)
      app.addHook('onRequest', (request, _reply, done) => {
        request.startedAt = performance.now()
        done()
      })
      app.addHook('onResponse', (request, reply, done) => {
        batch.push({
          time: Date.now(),
          method: request.method,
          route: request.routeOptions.url ?? '(unmatched)',
          status: reply.statusCode,
          durationUs: Math.round((performance.now() - request.startedAt) * 1000),
        })
        done()
      })
    }
    app.get('/', async () => {
      if (awaits > 0) await work()
      return 'hello world'
    })
    app.get('/other', async () => 'other')
    server = app.server
    ready = app.ready()
  } else if (framework === 'express') {
    const express = require('express')
    const app = express()
    if (config.startsWith('routemeter-')) bindRoutemeter(app)
    if (config === 'prom-bundle') {
      const promBundle = require('express-prom-bundle')
      app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }))
    }
    if (config === 'swagger-stats') app.use(require('swagger-stats').getMiddleware({}))
    if (config === 'status-monitor') app.use(require('express-status-monitor')())
    if (batch !== undefined) {
      app.use((req, res, next) => {
        const start = performance.now()
        res.once('finish', () => {
          batch.push({
            time: Date.now(),
            method: req.method,
            route: req.route?.path ?? '(unmatched)',
            status: res.statusCode,
            durationUs: Math.round((performance.now() - start) * 1000),
          })
        })
        next()
      })
    }
    app.get('/', (_req, res, next) => {
      if (awaits === 0 && cpuMs === 0) res.send('hello world')
      else work().then(() => res.send('hello world'), next)
    })
    // Another endpoint, at level 2 in routemeter-1-beside-2; never requested.
    app.get('/other', (_req, res) => {
      res.send('other')
    })
    server = http.createServer(app)
  } else {
    const Koa = require('koa')
    const Router = require('@koa/router')
    const app = new Koa()
    if (config.startsWith('routemeter-')) bindRoutemeter(app)
    if (batch !== undefined) {
      app.use(async (ctx, next) => {
        const start = performance.now()
        try {
          await next()
        } finally {
          batch.push({
            time: Date.now(),
            method: ctx.method,
            route: ctx._matchedRoute ?? '(unmatched)',
            status: ctx.status,
            durationUs: Math.round((performance.now() - start) * 1000),
          })
        }
      })
    }
    const router = new Router()
    router.get('/', async (ctx) => {
      if (awaits > 0) await work()
      ctx.body = 'hello world'
    })
    router.get('/other', (ctx) => {
      ctx.body = 'other'
    })
    app.use(router.routes())
    server = http.createServer(app.callback())
  }

  void ready.then(() =>
    server.listen(0, '127.0.0.1', () => {
      // After the collector's own discovery of the routes (queued at bind, before this).
      setImmediate(() => {
        // routemeter-1-beside-2: the other endpoint goes to level 2 as the desktop app sets it.
        if (config.startsWith('routemeter-1-beside-2')) {
          routemeter.flush()
          const Database = require('better-sqlite3')
          const db = new Database(database)
          const changed = db
            .prepare("UPDATE endpoint SET monitor_level = 2 WHERE route = '/other'")
            .run().changes
          db.close()
          if (changed !== 1) throw new Error(`${config}: /other is not in the file`)
          routemeter.refreshLevels()
        }
        // routemeter-3-cpu: the CPU-bound endpoint goes to level 3, /other stays at 2.
        if (config === 'routemeter-3-cpu') {
          routemeter.flush()
          const Database = require('better-sqlite3')
          const db = new Database(database)
          db.prepare("UPDATE endpoint SET monitor_level = 3 WHERE route = '/'").run()
          db.close()
          routemeter.refreshLevels()
          if (!routemeter.stats().profiling)
            throw new Error(`${config}: the profiler did not start`)
        }
        console.log(`listening ${server.address().port}`)
      })
    }),
  )
  // Writes what the recorder holds now, then says so: a callgrind pass ends with its own rows written.
  process.on('SIGUSR2', () => {
    routemeter?.flush()
    batch?.flush()
    console.log('flushed')
  })
  process.on('SIGTERM', () => {
    server.close()
    routemeter?.close()
    const stats = {
      ...(routemeter === undefined
        ? {}
        : { ...routemeter.stats(), outliers: outliersIn(database) }),
      ...(batch === undefined ? {} : batch.close()),
      ...(otelStats === undefined ? {} : otelStats()),
    }
    console.log(`stats ${JSON.stringify(stats)}`)
    process.exit(0)
  })
}

main()
