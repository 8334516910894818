/**
 * The benchmark's driver: its sections, targets and tables, in the order the run prints them.
 *
 * `npm run bench`: Routemeter's costs, measured side by side with what users
 * would install instead. Prints tables with each target beside its
 * figure and writes test-results/bench.json.
 *
 *   npm run bench                    the full run (rounds of 10 s runs, 1M and 10M files)
 *   npm run bench -- --quick         a smoke run of a minute or two; asserts no speed, only
 *                                    that every part works (2xx answers, no row lost, views answer)
 *   npm run bench -- --only overhead,writer,viewer --rounds 7 --seconds 10 --out FILE
 *   npm run bench -- --only overhead --configs routemeter-1,sqlite-batch   (bare always runs)
 *   npm run bench -- --only overhead,instructions   (instructions: callgrind's counts, needs valgrind)
 *   npm run bench -- --only instructions --frameworks koa
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  bytes,
  ensureCollectorBuilt,
  fixed,
  machine,
  percent,
  spread,
  ROOT,
  table,
  targetLine,
  type Spread,
  type TargetResult,
} from './lib.js'
import {
  callgrindMissing,
  INSTRUCTION_CONFIGS,
  runInstructions,
  writerThreadInstructions,
  type InstructionOptions,
  type InstructionSummary,
  type WriterThreadCount,
} from './instructions.js'
import { runOverhead, type ConfigSummary } from './overhead.js'
import { runViewer, type ViewerFigures } from './viewer.js'
import { runWriter, type WriterFigures } from './writer.js'
import { runProfiles, type ProfileFigures } from './profiles.js'
import { runRetention, type RetentionFigures } from './retention.js'

const SECTIONS = ['overhead', 'instructions', 'writer', 'viewer', 'retention', 'profiles'] as const
type Section = (typeof SECTIONS)[number]

/** End of every generated period: fixed, so that files are reused and runs compare. */
const END = Date.UTC(2026, 0, 1)

const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

function range(s: Spread, digits = 0): string {
  if (s.n <= 1) return fixed(s.median, digits)
  return `${fixed(s.median, digits)} (${fixed(s.min, digits)}–${fixed(s.max, digits)})`
}

function overheadTable(rows: ConfigSummary[]): string {
  return table(
    [
      'framework',
      'configuration',
      'req/s median (min–max)',
      'of bare',
      'added µs/req (min–max)',
      'p50 ms',
      'p99 ms',
      'p99 vs bare',
      'CPU µs/req main + other threads',
      'client CPU',
    ],
    rows.map((r) => [
      r.framework,
      r.label,
      range(r.rps),
      percent(r.ratio),
      r.config === 'bare' ? '-' : range(r.addedUs, 1),
      fixed(r.p50.median),
      fixed(r.p99.median),
      percent(r.p99Ratio),
      `${fixed(r.cpuMainUs.median, 1)} + ${fixed(r.cpuAllUs.median - r.cpuMainUs.median, 1)}`,
      percent(r.runs.length > 0 ? Math.max(...r.runs.map((x) => x.clientCpu)) : Number.NaN),
    ]),
  )
}

function overheadTargets(rows: ConfigSummary[]): TargetResult[] {
  const targets: TargetResult[] = []
  for (const framework of ['express', 'koa']) {
    const level1 = rows.find((r) => r.framework === framework && r.config === 'routemeter-1')
    if (level1 === undefined) continue
    const minRatio = framework === 'express' ? 0.97 : 0.93
    targets.push({
      target: `${framework}: level 1 keeps >= ${percent(minRatio)} of bare throughput`,
      figure: percent(level1.ratio),
      met: level1.ratio >= minRatio,
    })
    targets.push({
      target: `${framework}: level 1 adds <= 4 µs/request (all threads, 1/throughput)`,
      figure: `${fixed(level1.addedUs.median, 1)} µs`,
      met: level1.addedUs.median <= 4,
    })
    targets.push({
      target: `${framework}: level 1 adds <= 2 µs/request on the request's thread (CPU time)`,
      figure: `${fixed(level1.addedMainUs, 1)} µs`,
      met: level1.addedMainUs <= 2,
      note: "main-thread CPU per request minus bare; the writer thread's is in the line above",
    })
    const alternatives = rows.filter(
      (r) =>
        r.framework === framework && !['bare', 'routemeter-0', 'routemeter-1'].includes(r.config),
    )
    const best = alternatives.sort((a, b) => a.addedUs.median - b.addedUs.median)[0]
    if (best !== undefined) {
      targets.push({
        target: `${framework}: level 1 costs less than every alternative`,
        figure: `${fixed(level1.addedUs.median, 1)} µs vs ${best.label} ${fixed(best.addedUs.median, 1)} µs`,
        met: level1.addedUs.median < best.addedUs.median,
      })
    }
  }
  return targets
}

/** CPU µs per instruction of the bare app in the time-based runs: main thread, all threads. */
function bareRates(
  framework: string,
  overhead: ConfigSummary[] | undefined,
  counts: InstructionSummary[],
): { main: number; all: number } | undefined {
  const timed = overhead?.find((r) => r.framework === framework && r.config === 'bare')
  const counted = counts.find((r) => r.framework === framework && r.config === 'bare')
  if (timed === undefined || counted === undefined) return undefined
  return {
    main: timed.cpuMainUs.median / counted.main.median,
    all: timed.cpuAllUs.median / counted.all.median,
  }
}

function instructionsTable(
  counts: InstructionSummary[],
  overhead: ConfigSummary[] | undefined,
): string {
  const n = (x: number): string => Math.round(x).toLocaleString('en')
  const added = (x: number): string => `${x >= 0 ? '+' : ''}${n(x)}`
  return table(
    [
      'framework',
      'configuration',
      'main thread instr/req median (servers min–max)',
      'added',
      'all threads instr/req',
      'added',
      "added µs at bare's rate (main / all)",
      'rows written',
    ],
    counts.map((r) => {
      const rate = bareRates(r.framework, overhead, counts)
      return [
        r.framework,
        r.label,
        `${n(r.main.median)} (${n(r.main.min)}–${n(r.main.max)})`,
        r.config === 'bare' ? '-' : added(r.addedMain),
        n(r.all.median),
        r.config === 'bare' ? '-' : added(r.addedAll),
        r.config === 'bare' || rate === undefined
          ? '-'
          : `${fixed(r.addedMain * rate.main, 1)} / ${fixed(r.addedAll * rate.all, 1)}`,
        r.config === 'bare' ? '-' : r.written.toLocaleString('en'),
      ]
    }),
  )
}

/**
 * Level 1's instructions on all threads in the steady state: its main thread's
 * above bare, plus a row's on the writer's threads counted alone (the servers'
 * all-thread column holds the writer still being compiled: see
 * writerThreadInstructions).
 */
function steadyAll(level1: InstructionSummary, writer: WriterThreadCount): number {
  return level1.addedMain + writer.perRow
}

/** The writer thread's count, and level 1's steady all-thread count per framework. */
function writerCountLine(counts: InstructionSummary[], writer: WriterThreadCount): string {
  const n = (x: number): string => Math.round(x).toLocaleString('en')
  const steady = counts
    .filter((r) => r.config === 'routemeter-1')
    .map((r) => `${r.framework} +${n(steadyAll(r, writer))}`)
  return (
    `writer thread alone (writer-child.ts, the hello-world servers' rows, ` +
    `${writer.rows.map(n).join(' and ')} rows): ${n(writer.perRow)} instructions a row on its ` +
    `threads; level 1 on all threads, steady: ${steady.join(', ')}`
  )
}

/**
 * Level 2's targets, from instruction counts: a request that is not an
 * outlier over level 1; a level-1 endpoint while another is at level 2; one
 * capture (the configuration where about half the requests are outliers,
 * its cost over level 2 divided by the share of outliers); and, as a figure,
 * what AsyncLocalStorage adds to a handler that awaits 100 promises.
 */
function level2Targets(
  counts: InstructionSummary[],
  overhead: ConfigSummary[] | undefined,
): TargetResult[] {
  const targets: TargetResult[] = []
  const n = (x: number): string => Math.round(x).toLocaleString('en')
  const note = "request's thread; callgrind's count at the bare app's CPU time per instruction"
  const noRate = 'no time-based run to convert with: --only overhead,instructions'
  for (const framework of Object.keys(INSTRUCTION_CONFIGS)) {
    const of = (config: string): InstructionSummary | undefined =>
      counts.find((r) => r.framework === framework && r.config === config)
    const level1 = of('routemeter-1')
    const level2 = of('routemeter-2')
    if (level1 === undefined || level2 === undefined) continue
    const rate = bareRates(framework, overhead, counts)?.main
    const us = (instructions: number): number =>
      rate === undefined ? Number.NaN : instructions * rate
    // With outliers' operations (an async context for every request) and without.
    for (const [suffix, how] of [
      ['', ''],
      ['-no-ops', ', operations off'],
    ] as const) {
      const watched = of(`routemeter-2${suffix}`)
      if (watched !== undefined) {
        const added = watched.main.median - level1.main.median
        targets.push({
          target: `${framework}: level 2${how} (a request that is not an outlier) adds <= 1.5 µs over level 1`,
          figure: `+${n(added)} instr = ${fixed(us(added), 2)} µs`,
          met: rate === undefined ? undefined : us(added) <= 1.5,
          note: rate === undefined ? noRate : note,
        })
      }
      const beside = of(`routemeter-1-beside-2${suffix}`)
      if (beside !== undefined) {
        const ratio = beside.main.median / level1.main.median - 1
        targets.push({
          target: `${framework}: a level 1 endpoint costs what it did (within 2%) while another is at level 2${how}`,
          figure: `${ratio >= 0 ? '+' : ''}${fixed(ratio * 100, 2)}% (+${n(beside.main.median - level1.main.median)} instr)`,
          met: ratio <= 0.02,
          note: "request's thread, instructions",
        })
      }
    }
    const outliers = of('routemeter-2-outliers')
    if (outliers !== undefined && outliers.written > 0 && outliers.outliers > 0) {
      const share = outliers.outliers / outliers.written
      const capture = (outliers.main.median - level2.main.median) / share
      targets.push({
        target: `${framework}: capturing an outlier costs <= 1 ms of the request's thread`,
        figure: `${n(capture)} instr = ${fixed(us(capture), 1)} µs`,
        met: rate === undefined ? undefined : us(capture) <= 1000,
        note: `${rate === undefined ? noRate : note}; ${fixed(share * 100, 1)}% of ${n(outliers.written)} requests were outliers`,
      })
    }
    const awaits1 = of('routemeter-1-awaits')
    const awaits2 = of('routemeter-2-awaits')
    if (awaits1 !== undefined && awaits2 !== undefined) {
      const context = awaits2.main.median - awaits1.main.median
      targets.push({
        target: `${framework}: what level 2's async context adds to a handler awaiting 100 promises (a figure, no target)`,
        figure: `+${n(context)} instr = ${fixed(us(context), 1)} µs`,
        met: undefined,
        note: rate === undefined ? noRate : note,
      })
    }
  }
  return targets
}

function instructionTargets(
  counts: InstructionSummary[],
  overhead: ConfigSummary[] | undefined,
  writer: WriterThreadCount | undefined,
): TargetResult[] {
  const targets: TargetResult[] = []
  const n = (x: number): string => Math.round(x).toLocaleString('en')
  for (const framework of Object.keys(INSTRUCTION_CONFIGS)) {
    const level1 = counts.find((r) => r.framework === framework && r.config === 'routemeter-1')
    if (level1 === undefined) continue
    const rate = bareRates(framework, overhead, counts)
    const note = "callgrind's count at the bare app's CPU time per instruction (overhead runs)"
    const all = writer === undefined ? Number.NaN : steadyAll(level1, writer)
    for (const [thread, bound, instructions, perInstruction, how] of [
      ["the request's thread", 2, level1.addedMain, rate?.main, ''],
      ['all threads', 4, all, rate?.all, '; all threads: main + the writer thread alone'],
    ] as const) {
      const us = perInstruction === undefined ? Number.NaN : instructions * perInstruction
      targets.push({
        target: `${framework}: level 1 adds <= ${bound} µs/request on ${thread} (instructions)`,
        figure: `+${n(instructions)} instr = ${fixed(us, 1)} µs`,
        met: Number.isFinite(us) ? us <= bound : undefined,
        note: Number.isFinite(us)
          ? `${note}${how}`
          : 'no time-based run to convert with: --only overhead,instructions',
      })
    }
    const batch = counts.find((r) => r.framework === framework && r.config === 'sqlite-batch')
    if (batch !== undefined && writer !== undefined) {
      // The middleware writes on the main thread: its all-thread count is its whole cost.
      targets.push({
        target: `${framework}: level 1 adds fewer instructions than the SQLite batch middleware (all threads)`,
        figure: `+${n(all)} vs +${n(batch.addedAll)}`,
        met: all < batch.addedAll,
        note: 'level 1: main thread + the writer thread alone; the middleware: all threads',
      })
    }
  }
  return targets
}

function writerTable(w: WriterFigures): string {
  const d = w.slowDisk
  const profile = table(
    ['MetricsStore.write, same synthetic rows, request table keeps', 'rows/s', 'B/row'],
    w.profile.map((p) => [
      `${p.variant}${p.indexes.length > 0 ? ` (${p.indexes.join(', ')})` : ''}`,
      Math.round(p.rowsPerSecond).toLocaleString('en'),
      fixed(p.bytesPerRow, 1),
    ]),
  )
  return [
    table(
      ['measure', 'figure'],
      [
        [
          `writer thread, ${w.thread.rows.toLocaleString('en')} rows in batches of ${w.thread.batchSize}, process pinned to one core`,
          `${Math.round(w.thread.rowsPerSecond).toLocaleString('en')} rows/s; CPU per row ${fixed(w.thread.writerCpuUsPerRow, 2)} µs in the writer thread + ${fixed(w.thread.mainCpuUsPerRow, 2)} µs on the app's thread`,
        ],
        [
          `MetricsStore.write on one thread (the generator's inline path), ${w.store.rows.toLocaleString('en')} rows in batches of ${w.store.batchSize}`,
          `${Math.round(w.store.rowsPerSecond).toLocaleString('en')} rows/s (${fixed(w.store.bytesPerRow, 1)} B/row)`,
        ],
        [
          `npm run generate: ${w.generator.rows.toLocaleString('en')} requests over ${w.generator.days} days, rows counted (and the users' and IPs' rollups written apart) on its thread, inserted by the bulk writer thread`,
          `${Math.round(w.generator.rowsPerSecond).toLocaleString('en')} rows/s end to end in ${fixed(w.generator.seconds, 1)} s; its thread ${percent(w.generator.writerShare)} in the writer (counting, writing apart, waiting)`,
        ],
        [
          `bound ${w.noLoss.framework} app at ${w.noLoss.targetRate.toLocaleString('en')} req/s for ${w.noLoss.seconds} s`,
          `${Math.round(w.noLoss.achievedRate).toLocaleString('en')} req/s reached; ${w.noLoss.responses} responses, ${w.noLoss.counted} counted, ${w.noLoss.rows} rows stored (sampled), ${w.noLoss.lost} lost; collector ${JSON.stringify(w.noLoss.collector)}`,
        ],
        [
          `file locked ${percent(d.lockedShare)} of the time, ${d.rate.toLocaleString('en')} req/s for ${d.seconds} s, maxBufferedRows ${d.maxBufferedRows.toLocaleString('en')}`,
          `RSS ${bytes(d.baselineRss)} -> peak ${bytes(d.peakRss)} -> ${bytes(d.finalRss)} after; collector ${JSON.stringify(d.collector)}`,
        ],
      ],
    ),
    '',
    'Where the write time goes (a diagnostic, not a target):',
    profile,
  ].join('\n')
}

function writerTargets(w: WriterFigures): TargetResult[] {
  const d = w.slowDisk
  const dropped = Number(d.collector.dropped ?? 0)
  const growth = d.peakRss - d.baselineRss
  // 1 KiB per buffered row is far above what a row costs: more would mean it is not the buffer.
  const bound = d.maxBufferedRows * 1024
  return [
    {
      target: 'writer sustains >= 300,000 rows/s',
      figure: `${Math.round(w.thread.rowsPerSecond).toLocaleString('en')} rows/s (writer thread)`,
      met: w.thread.rowsPerSecond >= 300_000,
    },
    {
      target: 'generator makes >= 500,000 requests/s',
      figure: `${Math.round(w.generator.rowsPerSecond).toLocaleString('en')} rows/s (${w.generator.rows.toLocaleString('en')} over ${w.generator.days} days)`,
      met: w.generator.rowsPerSecond >= 500_000,
    },
    {
      target: 'no request lost at 20,000 req/s',
      figure: `${w.noLoss.lost} lost at ${Math.round(w.noLoss.achievedRate).toLocaleString('en')} req/s`,
      met: w.noLoss.lost === 0 && w.noLoss.achievedRate >= 0.95 * w.noLoss.targetRate,
      note:
        w.noLoss.achievedRate < 0.95 * w.noLoss.targetRate
          ? 'the rate was not reached on this machine now'
          : undefined,
    },
    {
      target: 'memory bounded when the disk is slower than traffic',
      figure: `+${bytes(growth)} at peak, ${dropped.toLocaleString('en')} rows dropped`,
      met: dropped > 0 ? growth <= bound : undefined,
      note: dropped > 0 ? `bound: ${bytes(bound)}` : 'the buffer never filled: not exercised',
    },
  ]
}

function viewerTable(figures: ViewerFigures[]): string {
  const views = Object.keys(figures[0]?.ranges['30 days'] ?? {})
  const rangeNames = Object.keys(figures[0]?.ranges ?? {})
  const header = ['view']
  for (const f of figures) {
    for (const r of rangeNames) header.push(`${(f.requests / 1e6).toFixed(0)}M ${r} first/warm ms`)
  }
  const rows = views.map((view) => {
    const row = [view]
    for (const f of figures) {
      for (const r of rangeNames) {
        const t = f.ranges[r]?.[view]
        row.push(t === undefined ? '-' : `${fixed(t.firstMs)} / ${fixed(t.warmMs)}`)
      }
    }
    return row
  })
  const facts = figures.map(
    (f) =>
      `${(f.requests / 1e6).toFixed(0)}M requests: open ${fixed(f.openMs)} ms, ${bytes(f.sizeBytes)} ` +
      `(${fixed(f.bytesPerRequest, 1)} B/request), process RSS ${bytes(f.rssBytes)}, heap ${bytes(f.heapUsedBytes)}` +
      `${f.generateSeconds === null ? '' : `, generated in ${f.generateSeconds.toFixed(1)} s`}`,
  )
  return `${table(header, rows)}\n${facts.join('\n')}`
}

function viewerTargets(figures: ViewerFigures[]): TargetResult[] {
  const biggest = figures[figures.length - 1]
  if (biggest === undefined) return []
  const size = `${(biggest.requests / 1e6).toFixed(0)}M`
  const note = biggest.requests < 10_000_000 ? 'measured on 1M only (quick run)' : undefined
  const targets: TargetResult[] = []
  for (const [name, views] of Object.entries(biggest.ranges)) {
    const slowest = Object.entries(views).sort((a, b) => b[1].warmMs - a[1].warmMs)[0]
    if (slowest === undefined) continue
    targets.push({
      target: `every view <= 150 ms warm (${name})`,
      figure: `slowest ${slowest[0]} ${fixed(slowest[1].warmMs)} ms on ${size}`,
      met: slowest[1].warmMs <= 150,
      note,
    })
  }
  targets.push(
    {
      target: 'file opened in <= 1 s',
      figure: `${fixed(biggest.openMs)} ms on ${size}`,
      met: biggest.openMs <= 1000,
      note,
    },
    {
      target: '<= 64 bytes per request on disk',
      figure: `${fixed(biggest.bytesPerRequest, 1)} B on ${size}`,
      met: biggest.bytesPerRequest <= 64,
    },
  )
  return targets
}

function profilesTable(p: ProfileFigures): string {
  const configs = Object.keys(p.cpu)
  return (
    table(
      ['configuration', 'CPU, share of a core (median, range)', '/other p99 ms (median, range)'],
      configs.map((c) => [
        c,
        `${percent(p.cpu[c]!.median)} (${percent(p.cpu[c]!.min)}-${percent(p.cpu[c]!.max)})`,
        `${fixed(p.otherP99[c]!.median)} (${fixed(p.otherP99[c]!.min)}-${fixed(p.otherP99[c]!.max)})`,
      ]),
    ) +
    `
level 3 / level 2 CPU per round: ${p.ratios.map((r) => r.toFixed(3)).join(', ')}` +
    ` (${p.rates[0]} requests/s of 1 ms CPU and ${p.rates[1]}/s of /other, ${p.rounds} round(s) of ${p.seconds} s)` +
    `
profiles of one run: ${p.rows} row(s), ${bytes(p.bytes)}, ${p.samples} samples, ${percent(p.cpuWorkShare)} in cpuWork;` +
    ` an hour's row ${bytes(p.bytesPerHour)}, a day ${bytes(24 * p.bytesPerHour)} per version and node at this rate` +
    `
flame graph over 30 days (720 hourly rows): first ${fixed(p.flameFirstMs)} ms, warm ${fixed(p.flameWarmMs)} ms`
  )
}

function profilesTargets(p: ProfileFigures, quick: boolean): TargetResult[] {
  const ratio = spread(p.ratios)
  const note = quick ? 'quick run' : undefined
  const p99 = p.otherP99
  return [
    {
      target: 'level 3 adds <= 5% CPU over level 2 (CPU-bound endpoint, default interval)',
      figure: `x${ratio.median.toFixed(3)} (x${ratio.min.toFixed(3)}-x${ratio.max.toFixed(3)})`,
      met: quick ? undefined : ratio.median <= 1.05,
      note,
    },
    {
      target: "the other endpoints' p99 within noise at level 3",
      figure: `${fixed(p99['routemeter-3-cpu']!.median)} ms vs ${fixed(p99['routemeter-2-cpu']!.median)} ms`,
      met: quick ? undefined : p99['routemeter-3-cpu']!.median <= p99['routemeter-2-cpu']!.max,
      note: 'met: level 3 median within level 2 range',
    },
    {
      target: 'flame graph of a busy endpoint over 30 days <= 300 ms warm',
      figure: `${fixed(p.flameWarmMs)} ms`,
      met: p.flameWarmMs <= 300,
      note,
    },
  ]
}

function retentionTable(r: RetentionFigures): string {
  const y = r.year
  const views = Object.entries(y.views.ranges.all ?? {})
  const lines = [
    `Year file (${y.rollupDays} days of rollups at 1,000 requests a second over 50 endpoints, ` +
      `${y.rawRows.toLocaleString('en')} raw rows kept by the default policy; built in ${y.buildSeconds.toFixed(0)} s): ` +
      `${bytes(y.fileBytes)} on disk, ${bytes(y.usedBytes)} in use`,
    table(
      ['view over the whole file', 'first ms', 'warm ms'],
      views.map(([view, t]) => [view, fixed(t.firstMs), fixed(t.warmMs)]),
    ),
    '',
    table(
      [
        'koa at 10,000/s',
        'responses/s',
        'responses',
        'in rollups',
        'rows stored',
        'main thread',
        'other threads (writer)',
        'p99 ms',
      ],
      r.rates.map((x) => [
        x.config,
        fixed(x.load.rps),
        x.responses.toLocaleString('en'),
        x.rollupRequests.toLocaleString('en'),
        x.storedRows.toLocaleString('en'),
        percent(x.mainShare),
        percent(x.writerShare),
        fixed(x.load.p99),
      ]),
    ),
    '',
    `Pruning a day of ${r.prune.fileRequests.toLocaleString('en')} requests over 30 days: ` +
      `${r.prune.deletedRows.toLocaleString('en')} rows in ${r.prune.transactions} steps, ${r.prune.seconds.toFixed(2)} s; ` +
      `longest write lock ${fixed(r.prune.maxHoldMs, 1)} ms (p99 ${fixed(r.prune.p99HoldMs, 1)} ms)`,
    `An app at 2,000 requests a second for ${r.prune.p99DuringMs.length} round(s): p99 ${r.prune.p99DuringMs.join(', ')} ms ` +
      `while its collector prunes 20 of 30 days (rows left at the window's end: ${r.prune.rowsLeftAfterWindow.join(', ')}), ` +
      `${r.prune.p99QuietMs.join(', ')} ms with nothing to prune`,
  ]
  return lines.join('\n')
}

function retentionTargets(r: RetentionFigures, quick: boolean): TargetResult[] {
  const note = quick ? 'quick run: a month and a small file, not the year' : undefined
  const slowest = Object.entries(r.year.views.ranges.all ?? {}).sort(
    (a, b) => b[1].warmMs - a[1].warmMs,
  )[0]
  const sampled = r.rates.find((x) => x.config === 'routemeter-1')
  const targets: TargetResult[] = [
    {
      target: 'a year at 1,000/s with the defaults: file under 2 GB',
      figure: bytes(r.year.fileBytes),
      met: r.year.fileBytes < 2 * 1024 ** 3,
      note,
    },
    {
      target: 'every view over the year <= 150 ms warm',
      figure: slowest === undefined ? '-' : `slowest ${slowest[0]} ${fixed(slowest[1].warmMs)} ms`,
      met: slowest === undefined ? undefined : slowest[1].warmMs <= 150,
      note,
    },
    {
      target: 'pruning holds the write lock <= 100 ms at a time',
      figure: `${fixed(r.prune.maxHoldMs, 1)} ms`,
      met: r.prune.maxHoldMs <= 100,
      note,
    },
    {
      target: "an app's p99 during pruning within the machine's noise",
      figure: `${Math.min(...r.prune.p99DuringMs)}-${Math.max(...r.prune.p99DuringMs)} ms pruning, ${Math.min(...r.prune.p99QuietMs)}-${Math.max(...r.prune.p99QuietMs)} ms not`,
      met: Math.min(...r.prune.p99DuringMs) <= Math.max(...r.prune.p99QuietMs),
      note: 'met: the ranges overlap (autocannon p99, 1 ms resolution)',
    },
  ]
  if (sampled !== undefined) {
    targets.push(
      {
        target: '10,000/s with sampling: writer thread <= 25% of a core',
        figure: `${percent(sampled.writerShare)} (all threads but the main one) at ${fixed(sampled.load.rps)}/s`,
        met: sampled.load.rps >= 9000 ? sampled.writerShare <= 0.25 : undefined,
        note: sampled.load.rps >= 9000 ? note : 'the rate was not reached on this machine now',
      },
      {
        target: 'nothing lost from the rollups',
        figure: `${sampled.rollupRequests.toLocaleString('en')} counted, ${sampled.responses.toLocaleString('en')} responses`,
        met: sampled.rollupRequests >= sampled.responses,
      },
    )
  }
  return targets
}

/** What a smoke run checks: everything ran and answered, not how fast. */
function smokeProblems(
  overhead: ConfigSummary[] | undefined,
  counts: InstructionSummary[] | undefined,
  writerCount: WriterThreadCount | undefined,
  writer: WriterFigures | undefined,
  viewer: ViewerFigures[] | undefined,
): string[] {
  const problems: string[] = []
  if (writerCount !== undefined && !(writerCount.perRow > 0)) {
    problems.push(`instructions: the writer thread alone counted ${writerCount.perRow} a row`)
  }
  for (const r of counts ?? []) {
    for (const pass of r.passes) {
      if (pass.errors > 0 || pass.non2xx > 0 || !(pass.main > 0)) {
        problems.push(
          `instructions ${r.framework} ${r.config}: ${pass.errors} errors, ${pass.non2xx} non-2xx`,
        )
      }
    }
    if (r.config === 'routemeter-1' && r.written <= 0) {
      problems.push(`instructions: ${r.framework} routemeter-1 wrote no row`)
    }
  }
  for (const r of overhead ?? []) {
    for (const run of r.runs) {
      if (run.errors > 0 || run.non2xx > 0 || !(run.rps > 0)) {
        problems.push(`${r.framework} ${r.config}: ${run.errors} errors, ${run.non2xx} non-2xx`)
      }
    }
    if (r.config === 'routemeter-1' && r.runs.some((run) => Number(run.stats.written) <= 0)) {
      problems.push(`${r.framework} routemeter-1 wrote no row`)
    }
  }
  if (writer !== undefined) {
    if (writer.noLoss.lost > 0) problems.push(`${writer.noLoss.lost} requests lost under load`)
    if (writer.noLoss.rows === 0) problems.push('the bound app wrote no row')
    if (!(writer.store.rowsPerSecond > 0)) problems.push('MetricsStore wrote nothing')
    if (!writer.thread.writerThread) problems.push('the writer did not run in its thread')
  }
  for (const f of viewer ?? []) {
    if (f.requestCount !== f.requests) {
      problems.push(`viewer: ${f.requestCount} requests in a file of ${f.requests}`)
    }
  }
  return problems
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      configs: { type: 'string' },
      frameworks: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--quick] [--only overhead,instructions,writer,viewer] [--configs a,b] [--frameworks express,koa] [--rounds N] [--seconds N] [--out FILE]',
    )
    return
  }
  const quick = values.quick
  const only = (values.only?.split(',') ?? SECTIONS) as Section[]
  for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}`)
  const rounds = Number(values.rounds ?? (quick ? 1 : 5))
  const seconds = Number(values.seconds ?? (quick ? 1 : 10))
  const cwd = process.env.INIT_CWD ?? process.cwd()
  const out =
    values.out === undefined
      ? join(ROOT, 'test-results', quick ? 'bench-quick.json' : 'bench.json')
      : isAbsolute(values.out)
        ? values.out
        : resolve(cwd, values.out)

  ensureCollectorBuilt(log)
  const about = machine()
  const started = new Date()
  console.log(
    `Routemeter benchmarks, ${quick ? 'QUICK smoke run (figures are not measurements)' : 'full run'}, ${started.toISOString()}\n` +
      `${String(about.cpu)}, ${String(about.cores)} cores, ${String(about.memoryGiB)} GiB, Linux ${String(about.kernel)}, Node ${String(about.node)}, SQLite ${String(about.sqlite)}\n` +
      `load average ${(about.loadAverageAtStart as number[]).join(' ')}; ${String(about.pinning)}; commit ${String(about.commit)}`,
  )

  const results: Record<string, unknown> = { date: started.toISOString(), quick, machine: about }
  const targets: TargetResult[] = []
  let overhead: ConfigSummary[] | undefined
  let counts: InstructionSummary[] | undefined
  let writerCount: WriterThreadCount | undefined
  let writer: WriterFigures | undefined
  let viewer: ViewerFigures[] | undefined

  if (only.includes('overhead')) {
    log(`overhead: ${rounds} round(s) of ${seconds} s per configuration…`)
    overhead = await runOverhead({
      rounds,
      seconds,
      warmupSeconds: quick ? 0.5 : 3,
      connections: 100,
      only: values.configs?.split(','),
      log,
    })
    console.log(
      `\n1. Overhead on the request path (autocannon -c 100, ${rounds} round(s) x ${seconds} s, medians)\n` +
        overheadTable(overhead),
    )
    targets.push(...overheadTargets(overhead))
    results.overhead = overhead
  }
  if (only.includes('instructions')) {
    const missing = callgrindMissing()
    if (missing !== undefined) {
      console.log(`\n1b. Instructions a request: not measured: ${missing}`)
    } else {
      const chosen = values.configs?.split(',')
      const frameworks = values.frameworks?.split(',')
      const configs = Object.fromEntries(
        Object.entries(
          quick ? { express: ['bare', 'routemeter-1', 'routemeter-2'] } : INSTRUCTION_CONFIGS,
        )
          .filter(([framework]) => frameworks?.includes(framework) ?? true)
          .map(([framework, list]) => [
            framework,
            list.filter((c) => c === 'bare' || (chosen?.includes(c) ?? true)),
          ]),
      )
      const plan: Omit<InstructionOptions, 'connections' | 'configs' | 'log'> = quick
        ? { warmup: 300, requests: 300, passes: 1, processes: {} }
        : { warmup: 12_000, requests: 2000, passes: 5, processes: { koa: 3 } }
      const servers = Object.keys(configs)
        .map((framework) => `${framework} ${plan.processes[framework] ?? 1}`)
        .join(', ')
      log(
        `instructions: callgrind, ${plan.warmup} requests of warm-up, ${plan.passes} pass(es) of ` +
          `${plan.requests}, servers a configuration: ${servers}…`,
      )
      // One connection: a request per turn of the event loop, so the counts do not depend on
      // how fast the client is against the server (with 10, two runs differed by 3-4%).
      counts = await runInstructions({ ...plan, connections: 1, configs, log })
      if (counts.some((r) => r.config === 'routemeter-1')) {
        log('instructions: the writer thread alone…')
        writerCount = writerThreadInstructions(quick ? [5000, 25_000] : [50_000, 250_000], log)
      }
      console.log(
        `\n1b. Instructions a request (callgrind; autocannon -c 1; servers a configuration: ${servers}; ` +
          `each ${plan.passes} pass(es) of ${plan.requests} requests after ${plan.warmup}; medians of the servers' medians)\n` +
          instructionsTable(counts, overhead) +
          (writerCount === undefined ? '' : `\n${writerCountLine(counts, writerCount)}`),
      )
      targets.push(...instructionTargets(counts, overhead, writerCount))
      targets.push(...level2Targets(counts, overhead))
      results.instructions = counts
      results.writerThreadInstructions = writerCount
    }
  }
  if (only.includes('writer')) {
    log('writer…')
    const dir = mkdtempSync(join(tmpdir(), 'routemeter-writer-'))
    try {
      writer = await runWriter({ quick, dir, end: END, log })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    console.log(`\n2. Writer\n${writerTable(writer)}`)
    targets.push(...writerTargets(writer))
    results.writer = writer
  }
  if (only.includes('viewer')) {
    log('viewer…')
    viewer = await runViewer({
      sizes: quick ? [1_000_000] : [1_000_000, 10_000_000],
      days: 365,
      end: END,
      warmRuns: quick ? 2 : 5,
      log,
    })
    console.log(
      `\n3. Viewer (a fresh process per file; ranges end ${new Date(END).toISOString().slice(0, 10)})\n${viewerTable(viewer)}`,
    )
    targets.push(...viewerTargets(viewer))
    results.viewer = viewer
  }

  if (only.includes('retention')) {
    log('retention…')
    const dir = mkdtempSync(join(tmpdir(), 'routemeter-retention-'))
    try {
      const figures = await runRetention({ quick, dir, end: END, log })
      console.log(`\n4. Retention\n${retentionTable(figures)}`)
      targets.push(...retentionTargets(figures, quick))
      results.retention = figures
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  if (only.includes('profiles')) {
    log('profiles (level 3)…')
    const figures = await runProfiles({ quick, log })
    console.log(`\n5. Profiles (level 3)\n${profilesTable(figures)}`)
    targets.push(...profilesTargets(figures, quick))
    results.profiles = figures
  }
  console.log(
    `\nTargets${quick ? ' (quick run: figures are not measurements)' : ''}\n${table(['target', 'figure', '', 'note'], targets.map(targetLine))}`,
  )
  const loadAtEnd = loadavg().map((x) => Number(x.toFixed(2)))
  console.log(
    `load average at the end ${loadAtEnd.join(' ')}; ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`,
  )
  results.targets = targets
  results.loadAverageAtEnd = loadAtEnd
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`written to ${out}`)

  const problems = smokeProblems(overhead, counts, writerCount, writer, viewer)
  if (problems.length > 0) {
    console.error(`\nbench: something did not work:\n  ${problems.join('\n  ')}`)
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 1
})
