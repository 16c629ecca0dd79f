/**
 * Scale-out: campaigns running on 1, then 2, then 4... worker processes (workers are added
 * to the live campaigns, as an operator scales a deployment), each model call made to wait
 * as a remote LLM's would. Each point is measured over a steady window after the new
 * workers joined: deliveries per second in the sandbox ledger (one per contact, so in
 * steady state the contact rate), and the CPU the workers, the nats-server and the whole
 * machine used meanwhile.
 */
import { log, now, sleep, until } from "../Bench.js"
import type * as Driver from "./Driver.js"
import { cpuMeter, natsServerPid, pidsNamed } from "./Environment.js"
import * as Workers from "./Workers.js"

/** One measured point. */
export interface Point {
  readonly workers: number
  readonly contactsPerSec: number
  /** Cores used by all workers together, by the nats-server, by Postgres (all its processes) and by the whole machine. */
  readonly workerCores: number
  readonly natsCores: number
  readonly postgresCores: number
  readonly machineCores: number
  /** Cores used by everything else (this bench process included): other load on a shared machine. */
  readonly otherCores: number
  /** State conflicts and redeliveries the workers counted during the window, per contact. */
  readonly conflictsPerContact: number
  readonly redeliveriesPerContact: number
  /** A campaign finished inside the window (the rate then understates the capacity). */
  readonly drained: boolean
  /** From the new workers being ready to every partition held and every worker seeing all (NaN: never). */
  readonly settleMs: number
  /** Partitions each worker held at the window's end (a worker's share of the actors is its share of their work). */
  readonly partitionsHeld: ReadonlyArray<number>
  /**
   * Messages redelivered while partitions moved to the new workers (what the old owners had
   * pulled and handed back), counted until the redeliveries stopped, before the window.
   */
  readonly handoffRedeliveries: number
}

/** Options of a scale-out run. */
export interface ScaleOutOptions {
  /** Worker counts, ascending. */
  readonly workers: ReadonlyArray<number>
  readonly modelDelayMs: number
  /** Campaigns run at once, one per tenant. */
  readonly campaigns: number
  readonly contactsPerCampaign: number
  /** Time given to new workers to join before a window opens. */
  readonly warmupMs: number
  readonly windowMs: number
  /** Partitions of the deployment (to know when placement has settled). Default 32. */
  readonly partitions?: number
  /** Extra environment of every worker (`NEXUS_AGENT_CONCURRENCY`, say). */
  readonly env?: Readonly<Record<string, string>>
  /** Tenants are named this and a number (each run on a database needs its own). Default `scale`. */
  readonly tenantPrefix?: string
}

/** Runs the points in order on the driver's prefix and database. */
export const run = async (driver: Driver.Driver, options: ScaleOutOptions): Promise<ReadonlyArray<Point>> => {
  const tenants = Array.from({ length: options.campaigns }, (_, i) => `${options.tenantPrefix ?? "scale"}${i + 1}`)
  for (const t of tenants) await driver.loadContacts(t, options.contactsPerCampaign)
  const natsPid = natsServerPid()
  const workers: Array<Workers.Worker> = []
  const points: Array<Point> = []
  const grow = async (n: number) => {
    const added: Array<Workers.Worker> = []
    while (workers.length < n) {
      const w = Workers.spawnWorker({
        name: `bench-w${workers.length + 1}`,
        prefix: driver.prefix,
        databaseUrl: driver.database.url,
        modelDelayMs: options.modelDelayMs,
        ...(options.env ? { env: options.env } : {})
      })
      workers.push(w)
      added.push(w)
    }
    await Promise.all(added.map((w) => w.ready))
  }
  try {
    const campaigns = tenants.map((t) => ({ tenant: t, id: `scale-${t}` }))
    const delivered = async () => (await Promise.all(campaigns.map((c) => driver.deliveries(c.tenant, c.id)))).reduce((a, b) => a + b, 0)
    let progress: ReadonlyArray<{ done: boolean }> = []
    for (const n of options.workers) {
      log(`scale-out: ${n} worker(s), ${options.modelDelayMs} ms per model call`)
      const redelivered = () => workers.reduce((a, w) => a + (w.last()?.counters.redeliveries ?? 0), 0)
      const handedBack0 = redelivered()
      await grow(n)
      // placement settles: every partition held once, every worker sees every other
      const t = now()
      const partitions = options.partitions ?? 32
      const settled = () => {
        const reports = workers.map((w) => w.last())
        return (
          reports.every((r) => r !== null && r.liveNodes === workers.length && (r.owned > 0 || workers.length > partitions)) &&
          reports.reduce((a, r) => a + (r?.owned ?? 0), 0) === partitions
        )
      }
      let settleMs = Number.NaN
      await until("placement to settle", settled, 30_000, 100).then(
        () => void (settleMs = now() - t),
        () => log(`scale-out: placement did not settle within 30 s with ${n} worker(s); measuring anyway`)
      )
      // the window measures the steady state: partitions that moved are handed back first
      // (what their old owners had pulled comes back once to the new ones; a busy machine
      // takes seconds over it), so it opens once the redeliveries stop for a second (two reports)
      let quiet = { count: redelivered(), since: now() }
      await until(
        "the handoff's redeliveries to stop",
        () => {
          const c = redelivered()
          if (c !== quiet.count) quiet = { count: c, since: now() }
          return now() - quiet.since >= 1_000
        },
        20_000,
        250
      ).catch(() => log(`scale-out: redeliveries still going 20 s after ${n} worker(s) joined; measuring anyway`))
      const handoffRedeliveries = redelivered() - handedBack0
      if (progress.length === 0) {
        progress = await Promise.all(campaigns.map((c) => driver.start(c.tenant, c.id, options.contactsPerCampaign)))
        await until("the first delivery", async () => (await delivered()) > 0, 120_000, 200)
      }
      // the first point also waits for the campaigns to ramp up and the worker's code to warm
      await sleep(points.length === 0 ? 2 * options.warmupMs : options.warmupMs)
      const counters0 = workers.map((w) => w.last()?.counters)
      const d0 = await delivered()
      const t0 = now()
      const meter = cpuMeter([natsPid === null ? [] : [natsPid], workers.map((w) => w.pid), () => pidsNamed("postgres")])
      const deadline = t0 + options.windowMs
      while (now() < deadline && !progress.some((p) => p.done)) await sleep(250)
      const d1 = await delivered()
      const t1 = now()
      const cpu = meter()
      const counters1 = workers.map((w) => w.last()?.counters)
      const sum = (cs: ReadonlyArray<{ stateConflicts: number; redeliveries: number } | undefined>, k: "stateConflicts" | "redeliveries") =>
        cs.reduce((a, c) => a + (c?.[k] ?? 0), 0)
      const contacts = Math.max(1, d1 - d0)
      points.push({
        workers: n,
        contactsPerSec: ((d1 - d0) * 1000) / (t1 - t0),
        workerCores: cpu.cores[1]!,
        natsCores: cpu.cores[0]!,
        postgresCores: cpu.cores[2]!,
        machineCores: cpu.machineCores,
        otherCores: cpu.machineCores - cpu.cores[1]! - (Number.isNaN(cpu.cores[0]!) ? 0 : cpu.cores[0]!) - (Number.isNaN(cpu.cores[2]!) ? 0 : cpu.cores[2]!),
        conflictsPerContact: (sum(counters1, "stateConflicts") - sum(counters0, "stateConflicts")) / contacts,
        redeliveriesPerContact: (sum(counters1, "redeliveries") - sum(counters0, "redeliveries")) / contacts,
        drained: progress.some((p) => p.done),
        settleMs,
        partitionsHeld: workers.map((w) => w.last()?.owned ?? 0),
        handoffRedeliveries
      })
      log(`scale-out: ${n} worker(s): ${points[points.length - 1]!.contactsPerSec.toFixed(1)} contacts/s`)
      if (progress.some((p) => p.done)) break
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
  return points
}
