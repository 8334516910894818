/**
 * A progress bar for long jobs, on stderr by default. On a terminal it
 * redraws one line (at most 10 times a second); otherwise (a log file, CI)
 * it prints a line at every tenth of the way.
 */
export interface Progress {
  update(done: number): void
  /** Ends the bar; prints `message` on its own line if given. */
  finish(message?: string): void
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream
  label?: string
  /** what is counted, e.g. 'rows' */
  unit?: string
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 1 : 2)}M`
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`
  return String(Math.round(n))
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?'
  if (s < 60) return `${Math.ceil(s)}s`
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}

export function createProgress(total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr
  const label = options.label ?? ''
  const unit = options.unit ?? ''
  const tty = stream.isTTY === true
  const started = performance.now()
  let lastDraw = 0
  let lastTenth = 0
  let drawn = false

  const line = (done: number): string => {
    const seconds = (performance.now() - started) / 1000
    const rate = seconds > 0 ? done / seconds : 0
    const fraction = total > 0 ? Math.min(1, done / total) : 1
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY
    const text =
      `${(fraction * 100).toFixed(0).padStart(3)}% ${formatCount(done)}/${formatCount(total)} ${unit}` +
      ` ${formatCount(rate)} ${unit}/s ${fraction < 1 ? `ETA ${formatSeconds(eta)}` : `${formatSeconds(seconds)}`}`
    if (!tty) return `${label}${text}`
    const width = Math.max(
      10,
      Math.min(40, (stream.columns ?? 80) - label.length - text.length - 4),
    )
    const filled = Math.round(fraction * width)
    return `${label}[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`
  }

  return {
    update(done) {
      if (tty) {
        const now = performance.now()
        if (now - lastDraw < 100 && done < total) return
        lastDraw = now
        stream.write(`\r${line(done)}\x1b[K`)
        drawn = true
        return
      }
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 10
      if (tenth > lastTenth) {
        lastTenth = tenth
        stream.write(`${line(done)}\n`)
      }
    },
    finish(message) {
      if (tty && drawn) stream.write('\n')
      if (message !== undefined) stream.write(`${message}\n`)
    },
  }
}
