/*
 * The collector's side of its writer: a worker thread that owns the metrics
 * file, so that SQLite's work (and its waits on locks and fsync) stays off the
 * app's thread. Batches are handed over without copying; flush(), close() and
 * the exit hooks block on a shared word until the thread has written. If the
 * thread cannot start, or stops too often, the same writer runs on the app's
 * thread instead.
 */
import {
  MessageChannel,
  receiveMessageOnPort,
  type MessagePort,
  type Worker,
} from 'node:worker_threads'
import type { Batch, EndpointLevel } from './batch.js'
import { BatchWriter, type WriterConfig } from './batch-writer.js'
import { deserializeError } from '../threads/errors.js'
import { startThread } from '../threads/start.js'
import {
  CONTROL_BYTES,
  DONE,
  GOOD_WRITES,
  OUTSTANDING,
  RESULT,
  STATE,
  STOPPED,
  WRITTEN_OFFSET,
  type Command,
  type WorkerData,
  type WriterEvent,
} from './protocol.js'

/** Milliseconds of retention work per poll when the writer runs on the app's thread. */
const INLINE_RETENTION_BUDGET_MS = 10

export interface WriterLinkOptions extends WriterConfig {
  flushInterval: number
  levelPollInterval: number
  /** false: write on the app's thread from the start */
  thread: boolean
}

export interface WriterLinkHandlers {
  error(error: Error, kind: string): void
  levels(endpoints: EndpointLevel[]): void
  /**
   * The writer lost what it held (its thread stopped): `lost` rows are gone,
   * and every endpoint must be defined again in the next batch.
   */
  restarted(lost: number): void
}

/** Longest flush(), close() or exit waits for the thread. */
const SYNC_TIMEOUT_MS = 10_000
/** Threads started again after one stopped, before writing on the app's thread instead. */
const MAX_RESTARTS = 3

export class WriterLink {
  private worker: Worker | undefined
  private events: MessagePort | undefined
  private inline: BatchWriter | undefined
  private control!: Int32Array
  private written!: BigInt64Array
  /** rows written and good writes by threads that stopped */
  private writtenBefore = 0
  private goodWritesBefore = 0
  private seq = 0
  private restarts = 0
  private closed = false
  private pollTimer: NodeJS.Timeout | undefined
  private lastThreadError: Error | undefined

  constructor(
    private readonly options: WriterLinkOptions,
    private readonly handlers: WriterLinkHandlers,
  ) {
    this.newControl()
    if (!options.thread || !this.startThread()) this.startInline()
  }

  /** Whether writes run in a worker thread (false: on the app's thread). */
  get threaded(): boolean {
    return this.worker !== undefined
  }

  private newControl(): void {
    const shared = new SharedArrayBuffer(CONTROL_BYTES)
    this.control = new Int32Array(shared, 0, WRITTEN_OFFSET / 4)
    this.written = new BigInt64Array(shared, WRITTEN_OFFSET, 1)
  }

  private startThread(): boolean {
    const { port1, port2 } = new MessageChannel()
    const data: WorkerData = {
      config: {
        database: this.options.database,
        version: this.options.version,
        node: this.options.node,
        maxNewClients: this.options.maxNewClients,
        retention: this.options.retention,
      },
      flushInterval: this.options.flushInterval,
      levelPollInterval: this.options.levelPollInterval,
      control: this.control.buffer as SharedArrayBuffer,
      events: port2,
    }
    // An entry that cannot load marks the thread stopped at once, so that nobody waits for it.
    const worker = startThread('writer/thread-entry', data, {
      transferList: [port2],
      onLoadFailure: {
        port: port2,
        control: this.control.buffer as SharedArrayBuffer,
        set: [[STATE, STOPPED]],
        notify: STATE,
      },
    })
    if (worker === undefined) {
      port1.close()
      return false
    }
    this.worker = worker
    this.events = port1
    this.lastThreadError = undefined
    port1.on('message', (event: WriterEvent) => this.handle(event))
    worker.on('error', (error) => {
      this.lastThreadError = error
    })
    worker.on('exit', (code) => this.threadStopped(worker, port1, code))
    // Neither keeps the app alive.
    port1.unref()
    worker.unref()
    return true
  }

  private startInline(): void {
    const control = this.control
    const written = this.written
    this.inline = new BatchWriter(this.options, {
      error: (error, kind) => this.handlers.error(asError(error), kind),
      levels: (endpoints) => this.handlers.levels(endpoints),
      settled: (rows, skipped, wrote) => {
        control[OUTSTANDING]! -= rows + skipped
        written[0]! += BigInt(rows)
        if (wrote) control[GOOD_WRITES]!++
      },
    })
    this.pollTimer = setInterval(() => {
      this.inline?.pollLevels()
      // On the app's thread: little at a time, as it holds up the app's requests.
      this.inline?.maintain(INLINE_RETENTION_BUDGET_MS)
    }, this.options.levelPollInterval).unref()
    this.inline.openStore()
  }

  private handle(event: WriterEvent): void {
    if (event.type === 'error') this.handlers.error(deserializeError(event.error), event.kind)
    else if (event.type === 'load-failed') this.lastThreadError = deserializeError(event.error)
    else this.handlers.levels(event.endpoints)
  }

  /** Handles the events the thread sent and the collector has not seen yet, now. */
  private drain(port: MessagePort | undefined = this.events): void {
    if (port === undefined) return
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      this.handle(m.message as WriterEvent)
    }
  }

  private threadStopped(worker: Worker, events: MessagePort, code: number): void {
    if (worker !== this.worker) return
    this.drain(events)
    events.close()
    this.worker = undefined
    this.events = undefined
    const lost = Math.max(0, Atomics.load(this.control, OUTSTANDING))
    const failedToLoad = Atomics.load(this.control, STATE) === STOPPED && !this.closed
    this.writtenBefore += Number(Atomics.load(this.written, 0))
    this.goodWritesBefore += Atomics.load(this.control, GOOD_WRITES)
    // The counts moved above; whatever writes next starts from zero.
    this.newControl()
    if (this.closed) return
    const why = this.lastThreadError?.message ?? `exit code ${code}`
    this.restarts++
    // A thread that cannot even load its entry will not do better a second time.
    const again = this.restarts <= MAX_RESTARTS && !failedToLoad
    this.handlers.error(
      new Error(
        `the writer thread stopped (${why})${lost > 0 ? `; ${lost} request(s) it held are lost` : ''}; ` +
          (again ? 'starting a new one' : "writing on the app's thread from now on"),
      ),
      'writer',
    )
    if (!again || !this.startThread()) this.startInline()
    this.handlers.restarted(lost)
  }

  private post(command: Command, transfer: ArrayBuffer[] = []): void {
    this.worker!.postMessage(command, transfer)
  }

  /**
   * Hands a batch of `rows` request rows over (the thread writes it at once),
   * or none: on the app's thread, rows kept after a failed write are retried.
   */
  send(batch: Batch | undefined, rows: number): void {
    if (this.inline !== undefined) {
      if (batch !== undefined) {
        Atomics.add(this.control, OUTSTANDING, rows)
        this.inline.receive(batch)
      }
      if (this.inline.hasWork) this.inline.write()
    } else if (batch !== undefined) {
      Atomics.add(this.control, OUTSTANDING, rows)
      this.post({ type: 'batch', batch, seq: 0, final: false }, [batch.buffer])
    }
  }

  /**
   * Hands a batch over (or none) and waits until it is written; false if the
   * file could not be written or the thread did not answer in time.
   */
  sendAndWait(batch: Batch | undefined, rows: number, final: boolean): boolean {
    if (this.inline !== undefined) {
      if (batch !== undefined) {
        Atomics.add(this.control, OUTSTANDING, rows)
        this.inline.receive(batch)
      }
      return this.inline.write(final)
    }
    if (batch !== undefined) Atomics.add(this.control, OUTSTANDING, rows)
    const seq = ++this.seq
    if (batch === undefined) this.post({ type: 'batch', batch: emptyBatch(), seq, final })
    else this.post({ type: 'batch', batch, seq, final }, [batch.buffer])
    return this.wait(seq)
  }

  /** Blocks until the thread finished command `seq`, then handles its events. */
  private wait(seq: number): boolean {
    const control = this.control
    const deadline = Date.now() + SYNC_TIMEOUT_MS
    for (;;) {
      const done = Atomics.load(control, DONE)
      if (done >= seq || Atomics.load(control, STATE) === STOPPED) break
      const left = deadline - Date.now()
      if (left <= 0) break
      // In slices: a thread that stopped without a word is noticed by its STATE.
      Atomics.wait(control, DONE, done, Math.min(left, 100))
    }
    this.drain()
    return Atomics.load(control, DONE) >= seq && Atomics.load(control, RESULT) === 1
  }

  /** Re-reads the file's monitoring levels now; they reach `handlers.levels` before it returns. */
  refreshLevels(): void {
    if (this.inline !== undefined) {
      this.inline.pollLevels(true)
      return
    }
    const seq = ++this.seq
    this.post({ type: 'refresh', seq })
    this.wait(seq)
  }

  /** Rows handed over and not yet written. */
  outstanding(): number {
    return Atomics.load(this.control, OUTSTANDING)
  }

  /** Rows written so far. */
  writtenRows(): number {
    return this.writtenBefore + Number(Atomics.load(this.written, 0))
  }

  /** Changes after every successful write. */
  goodWrites(): number {
    return this.goodWritesBefore + Atomics.load(this.control, GOOD_WRITES)
  }

  /** Stops the writer; write what is held first (sendAndWait with final). */
  close(): void {
    this.closed = true
    clearInterval(this.pollTimer)
    if (this.inline !== undefined) {
      this.inline.close()
      return
    }
    const worker = this.worker
    if (worker === undefined) return
    const seq = ++this.seq
    this.post({ type: 'close', seq })
    this.wait(seq)
    this.events?.close()
    void worker.terminate()
  }
}

function emptyBatch(): Batch {
  return {
    firstSlot: 0,
    endpoints: [],
    count: 0,
    capacity: 0,
    buffer: new ArrayBuffer(0),
    groups: [],
    ips: [],
    touched: new Float64Array(0),
    discovered: new Int32Array(0),
    outliers: [],
    profiles: [],
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
