/**
 * What the collector's writer thread sustains: rows appended to batches as
 * the request path does, handed to the thread (the built package's, as apps
 * run it) as fast as it takes them, until every row is committed. The rows
 * are drawn before the clock starts. Prints one JSON line.
 *
 *   node --import tsx bench/writer-child.ts <file> <rows> [mixed|hello]
 *
 * Traffic `mixed` (the default): 30 endpoints, 100 users of skewed loads.
 * `hello`: the rows of the overhead benchmark's hello-world servers, one
 * endpoint, no user, one IP (the instructions section counts the writer
 * thread on those, beside the server's own thread).
 */
import { AliasTable, Random } from '../src-main/services/generator/random.js'
import type * as Batches from '../collector/src/writer/batch.js'
import type * as Threads from '../collector/src/writer/app-link.js'
import { threadCpu } from './lib.js'

// The built package's modules, as apps run them (typed by their sources, which need no build).
const dist = new URL('../collector/dist/esm/', import.meta.url).href
const { RowBatch } = (await import(`${dist}writer/batch.js`)) as typeof Batches
const { WriterLink } = (await import(`${dist}writer/app-link.js`)) as typeof Threads

export interface WriterChildResult {
  rows: number
  batchSize: number
  seconds: number
  rowsPerSecond: number
  /** CPU µs per row: the app's thread (batches), every other thread (the writer) */
  mainCpuUsPerRow: number
  writerCpuUsPerRow: number
  writerThread: boolean
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))
const sleepSync = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms)

const [path, rowsArg, traffic = 'mixed'] = process.argv.slice(2)
if (traffic !== 'mixed' && traffic !== 'hello')
  throw new Error(`traffic: mixed or hello, not ${traffic}`)
const hello = traffic === 'hello'
const rows = Number(rowsArg)
const batchSize = 5000
const endpointCount = hello ? 1 : 30

// The same shape of traffic as the bench's store profile: a few hot endpoints, skewed users.
const random = new Random(42)
const endpointTable = new AliasTable(
  Array.from({ length: endpointCount }, (_, i) => (i + 1) ** -1.1),
)
const users = Array.from({ length: 100 }, (_, i) => `user-${i}`)
const userTable = new AliasTable(users.map(() => random.pareto(1.1)))
const slot = new Int32Array(rows)
const user = new Int32Array(rows)
const duration = new Float64Array(rows)
const status = new Uint16Array(rows)
for (let i = 0; i < rows; i++) {
  slot[i] = endpointTable.pick(random)
  user[i] = userTable.pick(random)
  duration[i] = Math.round(20_000 * Math.exp(0.6 * random.normal()))
  status[i] = random.next() < 0.03 ? 404 : 200
}
const ips = users.map((_, i) => `192.0.2.${1 + (i % 200)}`)

const errors: Error[] = []
const link = new WriterLink(
  {
    database: path!,
    version: { name: 'bench', source: 'option' },
    node: 'bench',
    flushInterval: 250,
    levelPollInterval: 1000,
    thread: true,
  },
  { error: (error) => errors.push(error), levels: () => undefined, restarted: () => undefined },
)
let defined = false
const endpoints = Array.from({ length: endpointCount }, (_, i) => ({
  method: 'GET',
  route: `/api/r${i}/:id`,
  level: 1 as const,
}))
/** The batch of rows [from, to), as Collector.takeBatch makes it. */
function batchOf(from: number, to: number, time: number) {
  const batch = new RowBatch()
  for (let i = from; i < to; i++) {
    const u = user[i]!
    if (hello) batch.push(0, time + i, 300 + (i % 50), 200, null, '127.0.0.1', 0)
    else batch.push(slot[i]!, time + i, duration[i]!, status[i]!, users[u]!, ips[u]!, 0)
  }
  const taken = batch.take()
  const first = !defined
  defined = true
  return {
    ...taken,
    firstSlot: 0,
    endpoints: first ? endpoints : [],
    touched: new Float64Array(0),
    discovered: new Int32Array(0),
    outliers: [],
    profiles: [],
  }
}

// The thread is up and the file created before the clock starts.
if (!link.sendAndWait(undefined, 0, false)) throw new Error(`the writer failed: ${errors.join()}`)
const start = Date.now() - 86_400_000
const wall0 = performance.now()
const cpu0 = threadCpu(process.pid)
for (let done = 0; done < rows; done += batchSize) {
  // At most a few batches in flight, like a collector whose writer keeps up.
  while (link.outstanding() > 4 * batchSize) sleepSync(1)
  const to = Math.min(rows, done + batchSize)
  link.send(batchOf(done, to, start), to - done)
}
const written = link.sendAndWait(undefined, 0, true)
const seconds = (performance.now() - wall0) / 1000
const cpu1 = threadCpu(process.pid)
const mainCpu = cpu1.main - cpu0.main
const allCpu = cpu1.all - cpu0.all
if (!written || link.writtenRows() !== rows) {
  throw new Error(`${link.writtenRows()} of ${rows} rows written: ${errors.join()}`)
}
const result: WriterChildResult = {
  rows,
  batchSize,
  seconds,
  rowsPerSecond: rows / seconds,
  mainCpuUsPerRow: (mainCpu * 1e6) / rows,
  writerCpuUsPerRow: ((allCpu - mainCpu) * 1e6) / rows,
  writerThread: link.threaded,
}
link.close()
console.log(JSON.stringify(result))
