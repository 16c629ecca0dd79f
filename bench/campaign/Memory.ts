/**
 * Memory: one campaign over a large audience on one worker process, its resident set
 * sampled from /proc every second while the campaign runs (until it completes or the time
 * cap). Flat means the RSS after the first quarter of the contacts does not keep growing
 * with the contacts done (audiences stream in windows, idle contact actors passivate).
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
  /** Highest RSS sampled once a quarter of the completed contacts were done, and at the end. */
  readonly rssAtQuarterMb: number
  readonly rssAtEndMb: number
  /** Growth of the RSS from the quarter mark to the end, per 100,000 contacts done meanwhile. */
  readonly growthMbPer100k: number
}

/** Runs a campaign of `contacts` on one worker, for at most `capMs`. */
export const run = async (driver: Driver.Driver, options: { readonly contacts: number; readonly capMs: number }): Promise<MemoryResult> => {
  const tenant = "memory"
  log(`memory: loading ${options.contacts.toLocaleString("en-US")} contacts`)
  await driver.loadContacts(tenant, options.contacts)
  const worker = Workers.spawnWorker({ name: "bench-memory", prefix: driver.prefix, databaseUrl: driver.database.url })
  try {
    await worker.ready
    const samples: Array<{ completed: number; rss: number }> = []
    const t0 = performance.now()
    const progress = await driver.start(tenant, "memory-1", options.contacts)
    let peak = 0
    let completed = 0
    while (!progress.done && performance.now() - t0 < options.capMs) {
      await sleep(1000)
      const m = processRssMb(worker.pid)
      if (m === null) throw new Error(`memory: worker ${worker.pid} is gone:\n${worker.output()}`)
      peak = Math.max(peak, m.peak)
      // deliveries in the ledger: one per contact, exact at any moment (progress events come in steps)
      completed = await driver.deliveries(tenant, "memory-1")
      samples.push({ completed, rss: m.rss })
    }
    const seconds = (performance.now() - t0) / 1000
    if (progress.done) completed = progress.completed
    const quarter = samples.find((s) => s.completed >= completed / 4) ?? samples[0] ?? { completed: 0, rss: Number.NaN }
    const afterQuarter = samples.filter((s) => s.completed >= quarter.completed)
    const last = samples[samples.length - 1] ?? quarter
    const maxAfterQuarter = Math.max(...afterQuarter.map((s) => s.rss))
    const done = completed - quarter.completed
    log(`memory: ${completed} of ${options.contacts} contacts in ${seconds.toFixed(0)} s, peak RSS ${peak.toFixed(0)} MB`)
    return {
      contacts: options.contacts,
      completed,
      done: progress.done,
      seconds,
      peakRssMb: peak,
      rssAtQuarterMb: quarter.rss,
      rssAtEndMb: last.rss,
      growthMbPer100k: done > 0 ? ((maxAfterQuarter - quarter.rss) * 100_000) / done : Number.NaN
    }
  } finally {
    await worker.stop()
  }
}
