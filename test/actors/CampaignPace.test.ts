/**
 * The campaign's pace against a simulated deployment: a pipe that takes `floorMs` per
 * contact and finishes at most `perMs` contacts a millisecond, dispatched to the way the
 * campaign actor does it (topped up to the limit when half of it is left in flight). The
 * pace must find the bottleneck's bandwidth-delay product from a cold start (not a fixed
 * window's queue), grow to the cap where nothing queues (a slow model, or waits that are
 * part of the work), follow a bottleneck that slows down, keep more in flight where that
 * makes bigger batches (a node whose own work is the bottleneck), not take a stall for its
 * floor, and stay within its bounds.
 */
import { describe, expect, it } from "@effect/vitest"
import * as CampaignPace from "../../actors/CampaignPace.js"

interface Pipe {
  /** Time in flight of a contact that does not queue. */
  readonly floorMs: number
  /**
   * Contacts finished per ms at most, as a function of the time (a bottleneck that changes)
   * and of the contacts in flight (a node that batches finishes more when more are in flight).
   */
  readonly perMs: (t: number, inFlight: number) => number
  /** A stall of this many ms (nothing finishes) when the second probe's first contacts are dispatched. */
  readonly stallMs?: number
}

interface Run {
  readonly pace: CampaignPace.Pace
  /** Time in flight of each contact, in completion order. */
  readonly timesMs: ReadonlyArray<number>
  /** Completion times. */
  readonly doneAt: ReadonlyArray<number>
  /** The limit after each completion. */
  readonly limits: ReadonlyArray<number>
  /** Whether the pace was probing after each completion. */
  readonly probing: ReadonlyArray<boolean>
  /** What each probe measured, in order. */
  readonly probed: ReadonlyArray<number>
}

/** Runs `contacts` contacts through the pipe under the pace (or a fixed window). */
const simulate = (pipe: Pipe, contacts: number, cap: number, fixedWindow?: number): Run => {
  let pace = CampaignPace.initial
  const limitNow = () => fixedWindow ?? CampaignPace.limitOf(pace, cap)
  // contacts in flight: [dispatched at, finishes at], in finishing order (FIFO pipe)
  const inFlight: Array<{ from: number; at: number }> = []
  let lastFinish = 0
  let dispatched = 0
  const timesMs: Array<number> = []
  const doneAt: Array<number> = []
  const limits: Array<number> = []
  const probing: Array<boolean> = []
  const probed: Array<number> = []
  let probes = 0
  let stall = false
  const dispatch = (t: number) => {
    const limit = limitNow()
    if (inFlight.length > Math.floor(limit / 2)) return
    pace = CampaignPace.started(pace, t)
    if (stall && pipe.stallMs !== undefined) {
      // what is dispatched now finishes the stall later
      lastFinish = Math.max(lastFinish, t) + pipe.stallMs
      stall = false
    }
    while (inFlight.length < limit && dispatched < contacts) {
      lastFinish = Math.max(t + pipe.floorMs, lastFinish + 1 / pipe.perMs(t, inFlight.length + 1))
      inFlight.push({ from: t, at: lastFinish })
      dispatched++
    }
  }
  dispatch(1)
  while (inFlight.length > 0) {
    const c = inFlight.shift()!
    const wasProbing = pace.probeFrom !== null
    pace = CampaignPace.completed(pace, c.at, c.from, cap)
    if (!wasProbing && pace.probeFrom !== null && ++probes === 2) stall = true
    if (wasProbing && pace.probeFrom === null) probed.push(pace.probes.at(-1)!)
    timesMs.push(c.at - c.from)
    doneAt.push(c.at)
    limits.push(limitNow())
    probing.push(pace.probeFrom !== null)
    dispatch(c.at)
  }
  return { pace, timesMs, doneAt, limits, probing, probed }
}

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
/** Contacts per ms over the completions from `from` to `to` (indexes). */
const rateOf = (r: Run, from: number, to: number) => (to - from) / (r.doneAt[to - 1]! - r.doneAt[from]!)

describe("CampaignPace", () => {
  it("at a bottleneck, keeps a few bandwidth-delay products in flight: the throughput of a big window at a fraction of its latency", () => {
    // 300 contacts/s at most, 50 ms per contact unqueued: 15 in flight keep it busy
    const pipe: Pipe = { floorMs: 50, perMs: () => 0.3 }
    const paced = simulate(pipe, 20_000, 2048)
    const fixed = simulate(pipe, 20_000, 2048, 512)
    const late = (r: Run) => r.timesMs.slice(10_000)
    // the limit settles at a few times 15, far below the fixed window
    const settled = paced.limits.slice(10_000).filter((_, i) => !paced.probing[10_000 + i])
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(CampaignPace.MIN)
    expect(Math.max(...settled)).toBeLessThanOrEqual(2 * CampaignPace.GAIN * 15)
    // no throughput is lost to the smaller window
    expect(rateOf(paced, 10_000, 20_000)).toBeGreaterThan(0.97 * 0.3)
    expect(rateOf(fixed, 10_000, 20_000)).toBeGreaterThan(0.97 * 0.3)
    // a contact spends a few floors in flight, where a fixed window of 512 queues it for over a second
    expect(mean(late(paced))).toBeLessThan(CampaignPace.GAIN * 2 * pipe.floorMs)
    expect(mean(late(fixed))).toBeGreaterThan(1_000)
  })

  it("where nothing queues (a slow model, many workers), doubles to the cap with each interval", () => {
    // 2 s per contact, 5,000 contacts/s possible: 10,000 in flight would be needed
    const r = simulate({ floorMs: 2_000, perMs: () => 5 }, 30_000, 2048)
    const reached = r.limits.findIndex((l) => l === 2048)
    expect(reached).toBeGreaterThan(0)
    // doubling from the minimum with each interval (two floors long): 7 doublings
    expect(r.doneAt[reached]!, "at full pace within 20 floors").toBeLessThan(20 * 2_000)
    expect(r.limits.slice(reached).every((l) => l === 2048)).toBe(true)
    // the cap, not the pace, limits: as fast as a fixed window of the cap's size
    const fixed = simulate({ floorMs: 2_000, perMs: () => 5 }, 30_000, 2048, 2048)
    expect(rateOf(r, 20_000, 30_000)).toBeGreaterThan(0.95 * rateOf(fixed, 20_000, 30_000))
  })

  it("waits that are part of the work (touch gaps of a day) are not taken for queueing", () => {
    const day = 86_400_000
    const r = simulate({ floorMs: day, perMs: () => 1 }, 10_000, 2048)
    expect(r.pace.floorMs).toBeGreaterThanOrEqual(day)
    expect(Math.max(...r.limits)).toBe(2048)
    expect(r.limits.slice(5_000).every((l) => l === 2048)).toBe(true)
  })

  it("follows a bottleneck that slows down: the throughput stays, the limit comes back down, the latency stays far below a fixed window's", () => {
    // 300/s for the first 30 s, then 100/s (a provider slowing down, workers leaving)
    const pipe: Pipe = { floorMs: 50, perMs: (t) => (t < 30_000 ? 0.3 : 0.1) }
    const r = simulate(pipe, 15_000, 2048)
    const fixed = simulate(pipe, 15_000, 2048, 512)
    const before = r.doneAt.findIndex((t) => t >= 25_000)
    const slowAt = r.doneAt.findIndex((t) => t >= 30_000)
    const settled = r.doneAt.findIndex((t) => t >= 80_000)
    expect(before).toBeGreaterThan(0)
    expect(settled).toBeGreaterThan(slowAt)
    expect(Math.max(...r.limits.slice(settled))).toBeLessThanOrEqual(Math.max(...r.limits.slice(before, slowAt)))
    expect(rateOf(r, settled, r.doneAt.length)).toBeGreaterThan(0.95 * 0.1)
    const fixedSettled = fixed.doneAt.findIndex((t) => t >= 80_000)
    expect(mean(r.timesMs.slice(settled))).toBeLessThan(mean(fixed.timesMs.slice(fixedSettled)) / 3)
  })

  it("where the workers queue at MIN in flight, probes below it measure the floor, and the limit comes down to MIN_DELAY_MS's product", () => {
    // one contact alone takes 10 ms, 330 contacts/s at most: 3.3 in flight keep it busy, and
    // MIN already queues (as on one node of 2 cores)
    const pipe: Pipe = { floorMs: 10, perMs: () => 0.33 }
    const r = simulate(pipe, 40_000, 2048)
    const late = r.limits.slice(20_000).filter((_, i) => !r.probing[20_000 + i])
    const product = Math.ceil(CampaignPace.GAIN * 0.33 * CampaignPace.MIN_DELAY_MS)
    expect(product).toBeGreaterThan(CampaignPace.MIN)
    expect(Math.max(...late)).toBeLessThanOrEqual(product + 1)
    expect(Math.min(...late)).toBeGreaterThanOrEqual(product - 1)
    expect(rateOf(r, 20_000, 40_000)).toBeGreaterThan(0.95 * 0.33)
    // a probe held at MIN measures a queue (about MIN / 2 / rate, 50 ms) as the floor
    expect(r.pace.floorMs!).toBeLessThan(3 * pipe.floorMs)
    expect(Math.min(...r.limits.filter((_, i) => r.probing[i]))).toBeLessThan(CampaignPace.MIN)
  })

  it("where more in flight makes bigger batches, keeps GAIN * MIN_DELAY_MS of throughput in flight: more contacts a second than at MIN, at a bounded latency", () => {
    // a node whose own work is the bottleneck: a contact alone takes 10 ms, and it finishes
    // 1.2 N / (N + 32) contacts a ms with N in flight (0.6 at 32, 0.96 at 128)
    const pipe: Pipe = { floorMs: 10, perMs: (_t, n) => (1.2 * n) / (n + 32) }
    const r = simulate(pipe, 60_000, 2048)
    const atMin = simulate(pipe, 60_000, 2048, CampaignPace.MIN)
    const rate = rateOf(r, 30_000, 60_000)
    expect(rate).toBeGreaterThan(1.2 * rateOf(atMin, 30_000, 60_000))
    const late = r.limits.slice(30_000).filter((_, i) => !r.probing[30_000 + i])
    const product = CampaignPace.GAIN * rate * CampaignPace.MIN_DELAY_MS
    expect(Math.min(...late)).toBeGreaterThan(0.8 * product)
    expect(Math.max(...late)).toBeLessThan(1.5 * product)
    // about the delay's GAIN times in flight, not more
    expect(mean(r.timesMs.slice(30_000))).toBeLessThan(CampaignPace.GAIN * CampaignPace.MIN_DELAY_MS)
  })

  it("where the rate is bursty, the limit follows its mean, not its bursts", () => {
    // as on one node of 2 cores: a contact alone takes 10 ms, and the node finishes 0.2 or
    // 0.6 contacts a ms by turns of 40 ms (collections, other work): 0.4 on average
    const pipe: Pipe = { floorMs: 10, perMs: (t) => (Math.floor(t / 40) % 2 === 0 ? 0.2 : 0.6) }
    const r = simulate(pipe, 40_000, 2048)
    const rate = rateOf(r, 20_000, 40_000)
    const late = r.limits.slice(20_000).filter((_, i) => !r.probing[20_000 + i])
    const product = CampaignPace.GAIN * rate * CampaignPace.MIN_DELAY_MS
    expect(Math.max(...late)).toBeLessThan(1.3 * product)
    expect(Math.min(...late)).toBeGreaterThan(0.7 * product)
  })

  it("a probe that lands on a stall does not set the floor: the limit does not jump", () => {
    // as on one node of 2 cores: a contact alone takes 10 ms; the second probe meets a 600 ms stall
    const pipe: Pipe = { floorMs: 10, perMs: () => 0.33, stallMs: 600 }
    const r = simulate(pipe, 40_000, 2048)
    const product = Math.ceil(CampaignPace.GAIN * 0.33 * CampaignPace.MIN_DELAY_MS)
    // after the first probe, the limit stays near the product (the burst after the stall
    // raises the rate a while); taken for the floor, the stalled probe's time would make it
    // GAIN * 0.33 * that: over 130
    const stalled = Math.ceil(CampaignPace.GAIN * 0.33 * r.probed[1]!)
    const firstProbeEnd = r.probing.findIndex((p, i) => i > 0 && !p && r.probing[i - 1])
    const after = r.limits.slice(firstProbeEnd + 1_000).filter((_, i) => !r.probing[firstProbeEnd + 1_000 + i])
    expect(r.probed.length).toBeGreaterThan(2)
    expect(r.probed[1]!, "the second probe measured the stall").toBeGreaterThan(100)
    expect(Math.max(...after)).toBeLessThan(1.25 * product)
    expect(stalled).toBeGreaterThan(2 * 1.25 * product)
    expect(r.pace.floorMs!).toBeLessThan(3 * pipe.floorMs)
  })

  it("stays within [MIN, cap], a probe within [PROBE_MIN, cap]; a completion without its engage time is not measured", () => {
    const r = simulate({ floorMs: 1, perMs: () => 0.001 }, 2_000, 100)
    expect(Math.min(...r.limits.filter((_, i) => !r.probing[i]))).toBeGreaterThanOrEqual(CampaignPace.MIN)
    expect(Math.min(...r.limits)).toBeGreaterThanOrEqual(CampaignPace.PROBE_MIN)
    const capped = simulate({ floorMs: 500, perMs: () => 10 }, 5_000, 100)
    expect(Math.max(...capped.limits)).toBe(100)
    expect(CampaignPace.limitOf({ ...CampaignPace.initial, limit: 500 }, 40)).toBe(40)

    // an engage time the contact did not report counts for the rate, not for the time in flight
    let p = CampaignPace.started(CampaignPace.initial, 1_000)
    for (let i = 0; i < 100; i++) p = CampaignPace.completed(p, 1_010 + i, undefined, 2048)
    expect(p.samples).toBe(0)
    expect(p.done).toBe(100)
    expect(p.intervals).toBe(0)
  })
})
