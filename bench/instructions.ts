/**
 * The request path measured a second way: instructions a request, counted by
 * callgrind, on the request's thread and on all threads of the server, and
 * the writer thread's instructions a row counted alone (writerThreadInstructions:
 * the all-thread targets take the main thread's plus that). A
 * count does not follow the speed of a shared machine (the time-based
 * figures of overhead.ts swing by tens of percent between minutes here), so
 * it shows what a configuration adds to the bare app when time cannot,
 * within a few percent (below).
 *
 * Each configuration runs in its own process under valgrind, pinned like the
 * time-based runs; after a warm-up its counters are zeroed, a fixed number of
 * requests is sent, the recorder writes what it holds, and the counts are
 * dumped: several passes, medians. One connection, so that each request has
 * a turn of the event loop of its own whatever the client's speed. The
 * warm-up opens several connections one after the other: with a warm-up on
 * one connection, the first pass's new connection made V8 recompile Node's
 * http code, and that pass cost up to 45% more than the later ones. A pass now and then still costs a few
 * percent more than the others (not traced; likely a major GC, or V8
 * compiling the writer thread's code, which runs a few times a pass); the
 * median of five leaves such a pass out. While V8 sized its young generation
 * as it liked, where a process settled differed between processes by several
 * thousand instructions on Koa (level 1 over bare: +4,110 to +12,220 in five
 * runs of one server each); it is held now (SEMI_SPACE_MIB), and the full run
 * starts three Koa servers a configuration and takes the median of their
 * medians (Express's bare count differed by 0.1% between runs: one server).
 * Under callgrind a request takes about 50 times as long, so the servers'
 * timers are scaled by 50 (server.mjs --time-scale): a batch then holds as
 * many requests as at full speed, and its cost is shared by as many.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { load, ROOT, spread, startServer, type Server, type Spread } from './lib.js'
import { LABELS } from './overhead.js'
import { LEVEL2_CONFIGS } from './configs.mjs'

/** How much slower a request is under callgrind than at full speed (bare Express: 120 µs, 6 ms). */
const TIME_SCALE = 50

/**
 * The young generation's semi-space, in MiB, at least what the servers keep at full
 * speed (bare Koa and level 1 alike, --trace-gc at 20,000 requests/s: a scavenge every
 * 3.4 MB, 17-18 MB committed). Under callgrind a server allocates 50 times more slowly,
 * close to the rate (1 MB/s) below which V8 shrinks its new space; it did in some
 * processes and not in others (Koa level 1: a scavenge every 0.8 MB, four times as
 * many, in most; bare in some), and that decided where a process settled: bare
 * 94,700 or 101,000 instructions, level 1 101,400-102,100 or 105,600-107,400. With the
 * size held, two processes each: bare 93,389 and 93,007, level 1 98,073 and 98,336.
 */
const SEMI_SPACE_MIB = 4

/** Node's flags for every process counted here. */
const NODE_FLAGS = [`--min-semi-space-size=${SEMI_SPACE_MIB}`]

/** Runs the warm-up is split into, each on a connection of its own (see measure). */
const WARMUP_RUNS = 8

export const INSTRUCTION_CONFIGS: Record<string, string[]> = {
  express: ['bare', 'routemeter-0', 'routemeter-1', 'sqlite-batch', ...LEVEL2_CONFIGS],
  koa: ['bare', 'routemeter-0', 'routemeter-1', 'sqlite-batch', ...LEVEL2_CONFIGS],
  fastify: [
    'bare',
    'routemeter-0',
    'routemeter-1',
    'fastify-metrics',
    'sqlite-batch',
    'routemeter-2',
  ],
}

export interface InstructionOptions {
  /** requests before counting: the JIT compiles the hot code meanwhile */
  warmup: number
  /** requests counted in each pass */
  requests: number
  passes: number
  /** servers a configuration by framework, each a process of its own (see runInstructions); 1 if not given */
  processes: Record<string, number>
  connections: number
  /** only these configurations (bare always runs) */
  configs?: Record<string, string[]>
  log: (line: string) => void
}

export interface InstructionPass {
  /** the server (process) it ran in, from 1 */
  server: number
  pass: number
  /** instructions a request: the main thread, every thread */
  main: number
  all: number
  non2xx: number
  errors: number
  responses: number
}

export interface InstructionSummary {
  framework: string
  config: string
  label: string
  passes: InstructionPass[]
  /** over the servers: each server's median over its passes */
  main: Spread
  all: Spread
  /** medians of the servers' medians above bare's */
  addedMain: number
  addedAll: number
  /** rows the servers reported written, summed over them (Routemeter and the batch middleware) */
  written: number
  /** outliers the servers wrote, summed over them (level 2) */
  outliers: number
}

/** Why callgrind cannot count here, or undefined if it can. */
export function callgrindMissing(): string | undefined {
  for (const [command, arg] of [
    ['valgrind', '--version'],
    ['callgrind_control', '--version'],
  ] as const) {
    if (spawnSync(command, [arg]).status !== 0) {
      return `${command} is not installed (Debian: apt-get install valgrind)`
    }
  }
  return undefined
}

function callgrind(command: '-z' | '-d', pid: number): void {
  const result = spawnSync('callgrind_control', [command, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) {
    throw new Error(`callgrind_control ${command} ${pid} failed: ${result.stderr}`)
  }
}

/**
 * The instructions of each thread, in thread order, from callgrind's files
 * `<prefix><thread>`: out.<pid>.<part>- for dump `part`, out.<pid>- at exit.
 */
function dumpedInstructions(dir: string, prefix: string): number[] {
  const counts: Array<[number, number]> = []
  for (const file of readdirSync(dir)) {
    if (!file.startsWith(prefix)) continue
    const summary = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, file), 'utf8'))
    if (summary === null) throw new Error(`no summary line in callgrind's ${file}`)
    counts.push([Number(file.slice(prefix.length)), Number(summary[1])])
  }
  if (counts.length === 0) throw new Error(`callgrind wrote no ${prefix}* files in ${dir}`)
  return counts.sort((a, b) => a[0] - b[0]).map(([, n]) => n)
}

/** Asks the server to write what its recorder holds (SIGUSR2) and waits until it has. */
function flushed(server: Server): Promise<void> {
  const stdout = server.child.stdout!
  return new Promise((done, fail) => {
    let seen = ''
    const finish = (error?: Error): void => {
      clearTimeout(timer)
      stdout.off('data', onData)
      if (error === undefined) done()
      else fail(error)
    }
    // A listener beside startServer's, removed after: pausing the stream would stop both.
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString()
      if (/^flushed$/m.test(seen)) finish()
    }
    const timer = setTimeout(
      () => finish(new Error('the server did not flush within 120 s')),
      120_000,
    )
    stdout.on('data', onData)
    server.child.kill('SIGUSR2')
  })
}

async function measure(
  framework: string,
  config: string,
  serverNo: number,
  options: InstructionOptions,
): Promise<{ passes: InstructionPass[]; written: number; outliers: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'routemeter-callgrind-'))
  try {
    const server = await startServer(
      framework,
      config,
      ['--db', join(dir, 'metrics.db'), '--time-scale', String(TIME_SCALE)],
      {
        wrap: [
          'valgrind',
          '--tool=callgrind',
          '--separate-threads=yes',
          `--callgrind-out-file=${join(dir, 'out.%p')}`,
        ],
        nodeFlags: NODE_FLAGS,
        listenTimeoutMs: 120_000,
      },
    )
    const passes: InstructionPass[] = []
    let written = 0
    let outliers = 0
    try {
      // The warm-up in several runs, a new connection each: V8 compiles Node's http code
      // for the first connection's socket and deoptimizes it all ("wrong map") when the
      // next connection's socket comes, so after one run the first pass recompiled it
      // (Koa bare, 12,000 requests in one run: passes 137,388, 100,111, 94,582; in four
      // runs: 94,207, 100,593, 94,470).
      for (let run = 0; run < WARMUP_RUNS; run++) {
        await load(server.url, {
          amount: Math.ceil(options.warmup / WARMUP_RUNS),
          connections: options.connections,
        })
      }
      await flushed(server)
      for (let pass = 1; pass <= options.passes; pass++) {
        callgrind('-z', server.pid)
        const result = await load(server.url, {
          amount: options.requests,
          connections: options.connections,
        })
        // The recorder writes this pass's rows before the dump, so the writer's work is in it.
        await flushed(server)
        // Each dump is a part of its own: part `pass` holds this pass's counts.
        callgrind('-d', server.pid)
        const threads = dumpedInstructions(dir, `out.${server.pid}.${pass}-`)
        passes.push({
          server: serverNo,
          pass,
          main: threads[0]! / result.responses,
          all: threads.reduce((sum, n) => sum + n, 0) / result.responses,
          non2xx: result.non2xx,
          errors: result.errors,
          responses: result.responses,
        })
        options.log(
          `  ${framework.padEnd(7)} ${config.padEnd(14)} server ${serverNo}/${options.processes[framework] ?? 1} ` +
            `pass ${pass}/${options.passes}: ` +
            `${Math.round(passes.at(-1)!.main).toLocaleString('en')} instructions a request on the main thread, ` +
            `${Math.round(passes.at(-1)!.all).toLocaleString('en')} on all`,
        )
      }
    } finally {
      const stats = await server.stop()
      written = Number(stats.written ?? 0)
      outliers = Number(stats.outliers ?? 0)
    }
    return { passes, written, outliers }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The writer thread's instructions a row, counted alone (writerThreadInstructions). */
export interface WriterThreadCount {
  traffic: 'hello'
  /** rows of the two runs: the smaller one's count is taken from the larger one's */
  rows: [number, number]
  /** instructions of every thread but the main one (the writer's, V8's, the GC's), a row */
  perRow: number
}

/**
 * The writer thread's instructions a row in its steady state: bench/writer-child.ts
 * (the built package's writer thread, fed batches as the request path makes them) run
 * under callgrind for two numbers of rows, the instructions of every thread but its main
 * one (which makes the batches: the request path's work, counted in the servers' main
 * thread) of the smaller run taken from the larger's. In the servers under callgrind the
 * writer writes one or two batches a pass, while still being compiled, so their
 * all-thread column shows its warm-up, not what a row costs once it is.
 */
export function writerThreadInstructions(
  rows: [number, number],
  log: (line: string) => void,
): WriterThreadCount {
  const others = rows.map((n) => {
    const dir = mkdtempSync(join(tmpdir(), 'routemeter-callgrind-writer-'))
    try {
      const run = spawnSync(
        'valgrind',
        [
          '--tool=callgrind',
          '--separate-threads=yes',
          `--callgrind-out-file=${join(dir, 'out.%p')}`,
          process.execPath,
          ...NODE_FLAGS,
          '--import',
          'tsx',
          join(ROOT, 'bench', 'writer-child.ts'),
          join(dir, 'writer.db'),
          String(n),
          'hello',
        ],
        { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      )
      if (run.status !== 0) throw new Error(`writer-child under callgrind failed: ${run.stderr}`)
      // valgrind runs the program in its own process: its pid is the one in the file names.
      const threads = dumpedInstructions(dir, `out.${run.pid}-`)
      const other = threads.slice(1).reduce((sum, x) => sum + x, 0)
      log(
        `  writer thread alone, ${n.toLocaleString('en')} rows: ` +
          `${other.toLocaleString('en')} instructions on threads other than the main one`,
      )
      return other
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  return { traffic: 'hello', rows, perRow: (others[1]! - others[0]!) / (rows[1] - rows[0]) }
}

/**
 * Every configuration in `processes` servers, in rounds (bare, level 0, …,
 * then again); a configuration's figure is the median of its servers'
 * medians. One server at a time: two at once, each with its client on the
 * other's core, made a request wait for its client to be scheduled and a
 * server take three times as long.
 */
export async function runInstructions(options: InstructionOptions): Promise<InstructionSummary[]> {
  const summaries: InstructionSummary[] = []
  for (const [framework, configs] of Object.entries(options.configs ?? INSTRUCTION_CONFIGS)) {
    const order = configs.includes('bare') ? configs : ['bare', ...configs]
    const measured = new Map(
      order.map((config) => [config, { passes: [] as InstructionPass[], written: 0, outliers: 0 }]),
    )
    for (let serverNo = 1; serverNo <= (options.processes[framework] ?? 1); serverNo++) {
      for (const config of order) {
        const result = await measure(framework, config, serverNo, options)
        const into = measured.get(config)!
        // Servers run in order and each gives its passes in order: `passes` stays sorted.
        into.passes.push(...result.passes)
        into.written += result.written
        into.outliers += result.outliers
      }
    }
    const serverMedians = (passes: InstructionPass[], of: 'main' | 'all'): Spread => {
      const servers = [...new Set(passes.map((p) => p.server))]
      return spread(
        servers.map(
          (server) => spread(passes.filter((p) => p.server === server).map((p) => p[of])).median,
        ),
      )
    }
    const bare = measured.get('bare')!
    const bareMain = serverMedians(bare.passes, 'main').median
    const bareAll = serverMedians(bare.passes, 'all').median
    for (const [config, { passes, written, outliers }] of measured) {
      const main = serverMedians(passes, 'main')
      const all = serverMedians(passes, 'all')
      summaries.push({
        framework,
        config,
        label: LABELS[config] ?? config,
        passes,
        main,
        all,
        addedMain: main.median - bareMain,
        addedAll: all.median - bareAll,
        written,
        outliers,
      })
    }
  }
  return summaries
}
