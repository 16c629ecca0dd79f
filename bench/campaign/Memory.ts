/**
 * Memory: one campaign over a large audience on one worker process, its resident set
 * sampled from /proc every second while the campaign runs (until it completes or the time
 * cap). Flat means the second half of the run needs no more memory than the first
 * (audiences stream in windows, idle contact actors passivate).
 */
import { log, sleep } from "../Bench.js"
import type * as Driver from "./Driver.js"
import { processRssMb } from "./Environment.js"
import * as Workers from "./Workers.js"

/** What a memory run measured. */
export interface MemoryResult {
  readonly contacts: number
  readonly completed: number
  readonly done: boolean
  readonly seconds: number
  /** Peak resident set of the worker (VmHWM). */
  readonly peakRssMb: number
  /** Highest RSS in the first and in the second half of the run (after a warm-up tenth). */
  readonly firstHalfMaxRssMb: number
  readonly secondHalfMaxRssMb: number
  /**
   * Contacts a second in the first and in the last quarter of the run (after the warm-up
   * tenth): a long campaign on one node should keep its pace.
   */
  readonly firstQuarterPerSec: number
  readonly lastQuarterPerSec: number
}

/** Runs a campaign of `contacts` on one worker, for at most `capMs`. */
export const run = async (driver: Driver.Driver, options: { readonly contacts: number; readonly capMs: number }): Promise<MemoryResult> => {
  const tenant = "memory"
  log(`memory: loading ${options.contacts.toLocaleString("en-US")} contacts`)
  await driver.loadContacts(tenant, options.contacts)
  const worker = Workers.spawnWorker({ name: "bench-memory", prefix: driver.prefix, databaseUrl: driver.database.url })
  try {
    await worker.ready
    const samples: Array<{ at: number; completed: number; rss: number }> = []
    const t0 = performance.now()
    const progress = await driver.start(tenant, "memory-1", options.contacts)
    let peak = 0
    let completed = 0
    while (!progress.done && performance.now() - t0 < options.capMs) {
      await sleep(1000)
      const m = processRssMb(worker.pid)
      if (m === null) throw new Error(`memory: worker ${worker.pid} is gone:\n${worker.output()}`)
      peak = Math.max(peak, m.peak)
      // as the campaign's progress events count them (one after each batch of completions).
      // Not the ledger's count: a count over the growing deliveries table every second took
      // Postgres 1.6 s at 585,000 rows, half a core taken from the worker on 2 cores, more
      // as the run went on (the campaign's rate fell with it)
      completed = progress.completed
      samples.push({ at: performance.now(), completed, rss: m.rss })
    }
    const seconds = (performance.now() - t0) / 1000
    // at the end, exact: the deliveries in the ledger (one per contact) unless the campaign completed
    completed = progress.done ? progress.completed : await driver.deliveries(tenant, "memory-1")
    // RSS saws up and down with the garbage collector: compare the highest of each half
    const steady = samples.slice(Math.floor(samples.length / 10))
    const half = Math.floor(steady.length / 2)
    const maxOf = (xs: ReadonlyArray<{ rss: number }>) => (xs.length === 0 ? Number.NaN : Math.max(...xs.map((x) => x.rss)))
    // the rate while contacts were left (a sample after the last one completed reads none)
    const running = steady.filter((x) => x.completed < options.contacts)
    const quarter = Math.floor(running.length / 4)
    const rateOf = (from: number, to: number) => {
      const a = running[from]
      const b = running[to]
      return quarter < 2 || a === undefined || b === undefined ? Number.NaN : ((b.completed - a.completed) * 1000) / (b.at - a.at)
    }
    log(`memory: ${completed} of ${options.contacts} contacts in ${seconds.toFixed(0)} s, peak RSS ${peak.toFixed(0)} MB`)
    return {
      contacts: options.contacts,
      completed,
      done: progress.done,
      seconds,
      peakRssMb: peak,
      firstHalfMaxRssMb: maxOf(steady.slice(0, half)),
      secondHalfMaxRssMb: maxOf(steady.slice(half)),
      firstQuarterPerSec: rateOf(0, quarter),
      lastQuarterPerSec: rateOf(running.length - 1 - quarter, running.length - 1)
    }
  } finally {
    await worker.stop()
  }
}
