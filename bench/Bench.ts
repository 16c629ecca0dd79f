/**
 * The contract between `npm run bench` and its suites. A suite is a module in
 * `bench/suites/` whose default export is a `Suite`; it returns rows, each one figure with
 * its value, the same-run baseline it is compared with (if any), the ratio to it, the
 * target and whether the target was met. Helpers here build rows and summarise samples.
 */

/** One measured figure. */
export interface Row {
  /** What was measured, e.g. `campaign: runtime contacts/s`. */
  figure: string
  value: number
  unit: string
  /** The same-run reference this figure is compared with, or null. */
  baseline: number | null
  /** `value / baseline`, or null without a baseline. */
  ratio: number | null
  /** The target in words, e.g. `>= 1.0x baseline`, or `-` for a figure without one. */
  target: string
  /** Whether the target was met; null when there is no target. */
  met: boolean | null
}

/** A benchmark suite. */
export interface Suite {
  /** Short name, used by `--only`. */
  name: string
  /** Runs the suite; `full` selects the large sizes of `npm run bench -- --full`. */
  run: (opts: { full: boolean }) => Promise<ReadonlyArray<Row>>
}

/** Options of `row`. */
export interface RowOptions {
  readonly baseline?: number | null
  readonly target?: string
  readonly met?: boolean | null
}

/** Builds a row; the ratio is computed when a positive baseline is given. */
export const row = (figure: string, value: number, unit: string, options: RowOptions = {}): Row => {
  const baseline = options.baseline ?? null
  return {
    figure,
    value,
    unit,
    baseline,
    ratio: baseline !== null && baseline !== 0 && Number.isFinite(value) ? value / baseline : null,
    target: options.target ?? "-",
    met: options.met ?? null
  }
}

/** The `p`-th percentile (0..100) of samples, nearest-rank; NaN when there are none. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const now = (): number => performance.now()

/** Process CPU time (user + system) in milliseconds. */
export const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every `everyMs` until it is true; rejects naming `what` after `timeoutMs`. */
export const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

const aborts = new Set<() => Promise<void>>()

/**
 * Registers a clean-up (delete streams, drop a database, kill a worker) to run if the bench
 * is interrupted or a suite times out; call the returned function once cleaned up normally.
 */
export const onAbort = (cleanup: () => Promise<void>): (() => void) => {
  aborts.add(cleanup)
  return () => void aborts.delete(cleanup)
}

/** Runs every registered clean-up (used by the runner on SIGINT/SIGTERM and suite timeouts). */
export const abortAll = async (): Promise<void> => {
  const pending = [...aborts]
  aborts.clear()
  await Promise.allSettled(pending.map((f) => f()))
}

/** Progress lines go to stderr so that the table on stdout stays clean. */
export const log = (message: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}
