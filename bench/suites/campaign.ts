/**
 * The campaign suite: the runtime against a hand-rolled JetStream pipeline measured in the
 * same run (see `campaign/Baseline.ts`), campaign start latency, scale-out over worker
 * processes with a simulated LLM latency (workers free to use the machine's CPU, and workers
 * bounded by their model calls), and memory over a large audience.
 *
 * Default sizes keep the suite to about four minutes on 2 cores (the build of `dist/` for
 * the workers included); `--full` runs the large ones (a million-contact campaign among
 * them). Every part that fails becomes an error row; the others still report.
 */
import os from "node:os"
import { log, now, percentile, type Row, row, type Suite } from "../Bench.js"
import * as Baseline from "../campaign/Baseline.js"
import * as Driver from "../campaign/Driver.js"
import * as InProcess from "../campaign/InProcess.js"
import * as Memory from "../campaign/Memory.js"
import { roundTrips } from "../campaign/RoundTrips.js"
import * as ScaleOut from "../campaign/ScaleOut.js"
import * as Skeleton from "../campaign/Skeleton.js"
import * as Workers from "../campaign/Workers.js"

const sizes = (full: boolean) =>
  full
    ? {
        baselineContacts: 100_000,
        runtimeSeconds: 60,
        runtimeMax: 100_000,
        startCampaigns: 300,
        workers: [1, 2, 4, 8],
        scaleContacts: 50_000,
        boundContacts: 20_000,
        scaleWindowMs: 20_000,
        memoryContacts: 1_000_000,
        memoryCapMs: 3 * 3600_000
      }
    : {
        baselineContacts: 20_000,
        runtimeSeconds: 15,
        runtimeMax: 20_000,
        startCampaigns: 100,
        workers: [1, 2, 4],
        // enough that no campaign runs out before the last window (four campaigns share the
        // workers; at 400 contacts/s 5,000 each ran out during the 4-worker window)
        scaleContacts: 15_000,
        // model-bound workers do 50-130 contacts/s together here
        boundContacts: 5_000,
        scaleWindowMs: 8_000,
        memoryContacts: 50_000,
        memoryCapMs: 25_000
      }

const MODEL_DELAY_MS = 300
/**
 * The model-bound series: each worker makes at most this many model calls at once (content
 * and analyzer each; `NEXUS_AGENT_CONCURRENCY`), as a provider's rate limit per key or a model
 * served next to each worker bounds it. Then a worker's capacity, not the machine's CPU, is
 * what one worker runs out of (16 calls of 300 ms: about 50 contacts/s a worker), and the
 * series shows what adding workers adds until the shared machine or the nats-server
 * saturates. In the other series a worker may make 256 calls at once, so one worker alone
 * already takes most of a core of these two (see the note on `MODEL_BOUND_CONCURRENCY`).
 */
const MODEL_BOUND_CALLS = 16
const START_CONTACTS = 20

const failed = (part: string, e: unknown): Row => ({
  figure: `campaign: ${part} failed: ${e instanceof Error ? e.message : String(e)}`.replace(/\s+/g, " ").slice(0, 300),
  value: Number.NaN,
  unit: "",
  baseline: null,
  ratio: null,
  target: "-",
  met: false
})

/**
 * Contacts per second over the second half of a campaign's completions (its whole-run rate
 * when too few completed to tell).
 */
const steadyRate = (r: InProcess.CampaignResult): number => {
  const at = r.completedAt
  const mid = Math.floor(at.length / 2)
  const span = (at[at.length - 1]! - at[mid]!) / 1000
  return at.length >= 100 && span > 0 ? (at.length - 1 - mid) / span : r.completed / Math.max(0.001, r.seconds)
}

/** The most partitions a worker held, against an even share of them. */
const busiest = (p: ScaleOut.Point) => {
  const total = p.partitionsHeld.reduce((a, b) => a + b, 0)
  return total === 0 ? Number.NaN : Math.max(...p.partitionsHeld) / (total / p.partitionsHeld.length)
}

/**
 * Rows of a scale-out run: contacts/s at each point, efficiency per doubling (target 0.8
 * until saturation), where each core went, and the point where it saturates with what ran
 * out. `label` tells the series apart.
 */
const scaleRows = (points: ReadonlyArray<ScaleOut.Point>, label: string): ReadonlyArray<Row> => {
  const name = (p: ScaleOut.Point) => `campaign: scale-out${label} ${p.workers} worker(s)`
  const one = points[0]
  const out: Array<Row> = []
  let saturatedAt: number | null = null
  for (const [i, p] of points.entries()) {
    out.push(
      row(`${name(p)}, ${MODEL_DELAY_MS} ms model calls: contacts/s`, p.contactsPerSec, "/s", {
        baseline: i === 0 ? null : (one?.contactsPerSec ?? null)
      })
    )
    const prev = points[i - 1]
    if (prev !== undefined && p.workers === prev.workers * 2) {
      const efficiency = p.contactsPerSec / (2 * prev.contactsPerSec)
      if (efficiency < 0.8 && saturatedAt === null) saturatedAt = p.workers
      out.push(
        row(`campaign: scale-out${label} efficiency ${prev.workers} -> ${p.workers} workers`, efficiency, "", {
          target: ">= 0.8 until saturation",
          met: efficiency >= 0.8
        })
      )
    }
    out.push(
      row(`${name(p)}: worker cores`, p.workerCores, "cores"),
      row(`${name(p)}: nats-server cores`, p.natsCores, "cores"),
      row(`${name(p)}: Postgres cores`, p.postgresCores, "cores"),
      row(`${name(p)}: other load on the machine (bench, other processes)`, p.otherCores, "cores"),
      row(`${name(p)}: placement settled after`, p.settleMs, "ms"),
      row(`${name(p)}: partitions held by the busiest worker, against an even share (${p.partitionsHeld.join("/")})`, busiest(p), "x"),
      row(`${name(p)}: messages handed back when partitions moved (redelivered once, before the window)`, p.handoffRedeliveries, ""),
      row(`${name(p)}: state conflicts + redeliveries per contact`, p.conflictsPerContact + p.redeliveriesPerContact, "", {
        target: "0",
        met: p.conflictsPerContact + p.redeliveriesPerContact === 0
      })
    )
  }
  const at = points.find((p) => p.workers === saturatedAt)
  // what ran out: the machine's CPU, the nats-server (about 1.1 cores is its ceiling here), or neither
  const limit =
    at === undefined
      ? "none"
      : at.machineCores >= 0.9 * os.cpus().length
        ? "machine CPU"
        : at.natsCores >= 1.0
          ? "nats-server"
          : "neither (placement, conflicts or the workload)"
  out.push(
    row(`campaign: scale-out${label} saturates at (first doubling under 0.8; limit: ${limit})`, saturatedAt ?? Number.NaN, "workers"),
    ...(points.some((p) => p.drained) ? [failed(`scale-out${label}`, new Error("a campaign finished inside a window: raise contactsPerCampaign"))] : [])
  )
  return out
}

const part = async (name: string, rows: Array<Row>, f: () => Promise<ReadonlyArray<Row>>) => {
  try {
    rows.push(...(await f()))
  } catch (e) {
    log(`campaign: ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
    rows.push(failed(name, e))
  }
}

const suite: Suite = {
  name: "campaign",
  run: async ({ full }) => {
    const size = sizes(full)
    const rows: Array<Row> = []
    let base: Baseline.BaselineResult | null = null

    await part("baseline", rows, async () => {
      log(`campaign: baseline pipeline`)
      const b = await Baseline.run({ contacts: size.baselineContacts, seconds: full ? 20 : 6 })
      base = b
      return [
        row("campaign: baseline contacts/s (4-step JetStream pipeline)", b.contactsPerSec, "/s"),
        row("campaign: baseline contacts measured", b.contacts, ""),
        row("campaign: baseline CPU per contact", b.cpuMsPerContact, "ms"),
        row("campaign: baseline nats-server CPU per contact", b.natsCpuMsPerContact, "ms"),
        row("campaign: baseline p50 latency per contact", b.p50Ms, "ms"),
        row("campaign: baseline p99 latency per contact", b.p99Ms, "ms"),
        row("campaign: baseline NATS round trips per contact", roundTrips(b.traffic) / b.contacts, "")
      ]
    })

    await part("runtime", rows, async () => {
      const b = base as Baseline.BaselineResult | null
      const node = await InProcess.open()
      try {
        // warm up (JIT, pools, consumers), and size the measured campaign from the warm-up's
        // steady rate: that of its second half. A warm-up of 500 contacts ran cold (its first
        // completions after 1.3 s) and mostly at the pace's start and first probe: its
        // whole-run rate was 0.4-0.6x the measured campaign's, which then lasted 7 s instead
        // of 15 (1,800-1,900 contacts in runs at 270 /s)
        await node.loadContacts("warm", 2_000)
        const warm = await node.runCampaign({ tenant: "warm", campaignId: "warm-1", target: 2_000, timeoutMs: 120_000 })
        if (warm.completed === 0) throw new Error(`the warm-up campaign made no progress in ${warm.seconds.toFixed(0)} s`)
        const rate = steadyRate(warm)
        const n = Math.max(1000, Math.min(size.runtimeMax, Math.round((rate * size.runtimeSeconds) / 100) * 100))
        log(`campaign: runtime campaign of ${n} contacts (the warm-up's second half ran at ${rate.toFixed(0)} contacts/s)`)
        await node.loadContacts("bench", n)
        const r = await node.runCampaign({
          tenant: "bench",
          campaignId: "bench-1",
          target: n,
          trace: true,
          countTraffic: true,
          timeoutMs: Math.min(15 * 60_000, Math.max(60_000, (n / rate) * 3000))
        })
        const contacts = Math.max(1, r.completed)
        const t = r.traffic!
        const perContact = (x: number) => x / contacts
        const runtimeRows: Array<Row> = [
          row("campaign: runtime contacts measured", n, ""),
          row("campaign: runtime contacts/s (every guarantee on)", r.completed / r.seconds, "/s", {
            baseline: b?.contactsPerSec ?? null,
            target: ">= 1.0x baseline",
            met: b === null ? null : r.completed / r.seconds >= b.contactsPerSec
          }),
          row("campaign: runtime CPU per contact", r.cpuMs / contacts, "ms", { baseline: b?.cpuMsPerContact ?? null }),
          row("campaign: runtime nats-server CPU per contact", r.natsCpuMs / contacts, "ms", { baseline: b?.natsCpuMsPerContact ?? null }),
          row("campaign: runtime p50 latency per contact", percentile(r.latenciesMs, 50), "ms", { baseline: b?.p50Ms ?? null }),
          row("campaign: runtime p99 latency per contact", percentile(r.latenciesMs, 99), "ms", {
            baseline: b?.p99Ms ?? null,
            target: "<= 2x baseline",
            met: b === null ? null : percentile(r.latenciesMs, 99) <= 2 * b.p99Ms
          }),
          row("campaign: runtime p50 mailbox wait (dispatch to engaged)", percentile(r.queuedMs, 50), "ms"),
          row("campaign: runtime NATS round trips per contact", perContact(roundTrips(t)), "", {
            baseline: b ? roundTrips(b.traffic) / b.contacts : null
          }),
          row("campaign: runtime JetStream publishes per contact", perContact(t.streamPublishes), "", {
            baseline: b ? b.traffic.streamPublishes / b.contacts : null
          }),
          row("campaign: runtime KV reads + writes per contact", perContact(t.kvReads + t.kvWrites), "", {
            baseline: b ? (b.traffic.kvReads + b.traffic.kvWrites) / b.contacts : null
          }),
          row("campaign: runtime acks + pulls per contact", perContact(t.acks + t.pulls), "", {
            baseline: b ? (b.traffic.acks + b.traffic.pulls) / b.contacts : null
          }),
          row("campaign: runtime event-loop delay p99 during the campaign", r.eventLoopDelayP99Ms, "ms"),
          row("campaign: runtime KV put round trip max during the campaign (heartbeat path)", Math.max(...r.kvPutMs), "ms", {
            target: "< 3,000 ms (commit fence)",
            met: Math.max(...r.kvPutMs) < 3000
          }),
          row(
            "campaign: runtime redeliveries + conflicts + dead letters",
            r.counters.redeliveries + r.counters.stateConflicts + r.counters.deadLetters + r.counters.retries,
            "",
            { target: "0", met: r.counters.redeliveries + r.counters.stateConflicts + r.counters.deadLetters + r.counters.retries === 0 }
          )
        ]
        if (r.timedOut) runtimeRows.push(failed("runtime", new Error(`campaign did not complete: ${r.completed} of ${n} contacts in ${r.seconds.toFixed(0)} s`)))
        rows.push(...runtimeRows)

        // campaign start: start command to the first contact dispatched (its `contact.engage`
        // seen on the mailbox subjects) and engaged, campaigns one after another
        // 100 samples at least: over fewer, a p99 is simply the slowest one
        log(`campaign: ${size.startCampaigns} campaigns of ${START_CONTACTS} contacts, one at a time (start latency)`)
        const startedAt = now()
        await node.loadContacts("start", START_CONTACTS)
        const dispatches: Array<number> = []
        const firsts: Array<number> = []
        const planned: Array<number> = []
        const accepted: Array<number> = []
        for (let i = 0; i <= size.startCampaigns; i++) {
          const s = await node.runCampaign({ tenant: "start", campaignId: `start-${i}`, target: START_CONTACTS, timeoutMs: 60_000 })
          if (s.timedOut) throw new Error(`start campaign ${i} did not complete in 60 s`)
          if (i === 0) continue // warm-up
          firsts.push(s.firstContactMs)
          dispatches.push(s.firstDispatchMs)
          planned.push(s.plannedMs)
          accepted.push(s.acceptedMs)
        }
        log(`campaign: start latency measured in ${((now() - startedAt) / 1000).toFixed(0)} s`)
        return [
          row(`campaign: start to campaign accepted p50 (${dispatches.length} campaigns of ${START_CONTACTS} contacts, one at a time)`, percentile(accepted, 50), "ms"),
          row(`campaign: start to plan ready p50`, percentile(planned, 50), "ms"),
          row(`campaign: start to first contact dispatched p50`, percentile(dispatches, 50), "ms"),
          row("campaign: start to first contact dispatched p99", percentile(dispatches, 99), "ms", {
            target: "< 20 ms",
            met: percentile(dispatches, 99) < 20
          }),
          row("campaign: start to first contact dispatched, slowest", Math.max(...dispatches), "ms"),
          row(`campaign: start to first contact engaged (lock taken, draft asked) p50`, percentile(firsts, 50), "ms"),
          row("campaign: start to first contact engaged p99", percentile(firsts, 99), "ms")
        ]
      } finally {
        await node.close()
      }
    })

    await part("runtime skeleton", rows, async () => {
      const b = base as Baseline.BaselineResult | null
      const k = await Skeleton.run({ contacts: 1500, warmup: 300, seconds: full ? 20 : 6, maxContacts: full ? 50_000 : 10_000 })
      return [
        row("campaign: runtime skeleton contacts/s (same flow, no-op handlers)", k.contactsPerSec, "/s", {
          baseline: b?.contactsPerSec ?? null
        }),
        row("campaign: runtime skeleton CPU per contact", k.cpuMsPerContact, "ms", { baseline: b?.cpuMsPerContact ?? null }),
        row("campaign: runtime skeleton nats-server CPU per contact", k.natsCpuMsPerContact, "ms", { baseline: b?.natsCpuMsPerContact ?? null })
      ]
    })

    await part("scale-out and memory", rows, async () => {
      await Workers.prepare()
      const driver = await Driver.open()
      const out: Array<Row> = []
      try {
        // both series: four campaigns, one per tenant, measured at each worker count
        const scaleOut = (options: Pick<ScaleOut.ScaleOutOptions, "contactsPerCampaign" | "env" | "tenantPrefix">) =>
          ScaleOut.run(driver, { workers: size.workers, modelDelayMs: MODEL_DELAY_MS, campaigns: 4, warmupMs: 2_500, windowMs: size.scaleWindowMs, ...options })
        await part("scale-out", out, async () => scaleRows(await scaleOut({ contactsPerCampaign: size.scaleContacts }), ""))
        await driver.renew()
        await part("scale-out, model-bound workers", out, async () =>
          scaleRows(
            await scaleOut({
              contactsPerCampaign: size.boundContacts,
              env: { NEXUS_AGENT_CONCURRENCY: `content=${MODEL_BOUND_CALLS},analyzer=${MODEL_BOUND_CALLS}` },
              tenantPrefix: "bound"
            }),
            ` (model-bound, ${MODEL_BOUND_CALLS} calls at once a worker)`
          )
        )
        await driver.renew()
        await part("memory", out, async () => {
          const m = await Memory.run(driver, { contacts: size.memoryContacts, capMs: size.memoryCapMs })
          return [
            row(`campaign: memory ${m.contacts.toLocaleString("en-US")}-contact campaign on one worker: contacts done${m.done ? "" : " before the time cap"}`, m.completed, ""),
            row("campaign: memory peak RSS of the worker", m.peakRssMb, "MB", { target: "< 512 MB", met: m.peakRssMb < 512 }),
            row("campaign: memory RSS max in the second half of the run (baseline: first half)", m.secondHalfMaxRssMb, "MB", {
              baseline: m.firstHalfMaxRssMb,
              target: "flat (<= 1.1x)",
              met: Number.isFinite(m.secondHalfMaxRssMb) ? m.secondHalfMaxRssMb <= 1.1 * m.firstHalfMaxRssMb : null
            }),
            // the campaign's pace over a long run
            row("campaign: memory contacts/s in the last quarter of the run (baseline: first quarter)", m.lastQuarterPerSec, "/s", {
              baseline: m.firstQuarterPerSec
            })
          ]
        })
      } finally {
        await driver.close()
      }
      return out
    })

    return rows
  }
}

export default suite
