/**
 * The campaign's pace against a simulated deployment: a pipe that takes `floorMs` per
 * contact and finishes at most `perMs` contacts a millisecond, dispatched to the way the
 * campaign actor does it (topped up to the limit when half of it is left in flight). The
 * pace must find the bottleneck's bandwidth-delay product from a cold start (not a fixed
 * window's queue), grow to the cap where nothing queues (a slow model, or waits that are
 * part of the work), follow a bottleneck that slows down, and stay within its bounds.
 */
import { describe, expect, it } from "@effect/vitest"
import * as CampaignPace from "../../actors/CampaignPace.js"

interface Pipe {
  /** Time in flight of a contact that does not queue. */
  readonly floorMs: number
  /** Contacts finished per ms at most, as a function of the time (a bottleneck that changes). */
  readonly perMs: (t: number) => number
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
  const dispatch = (t: number) => {
    const limit = limitNow()
    if (inFlight.length > Math.floor(limit / 2)) return
    pace = CampaignPace.started(pace, t)
    while (inFlight.length < limit && dispatched < contacts) {
      lastFinish = Math.max(t + pipe.floorMs, lastFinish + 1 / pipe.perMs(t))
      inFlight.push({ from: t, at: lastFinish })
      dispatched++
    }
  }
  dispatch(1)
  while (inFlight.length > 0) {
    const c = inFlight.shift()!
    pace = CampaignPace.completed(pace, c.at, c.from, cap)
    timesMs.push(c.at - c.from)
    doneAt.push(c.at)
    limits.push(limitNow())
    probing.push(pace.probeFrom !== null)
    dispatch(c.at)
  }
  return { pace, timesMs, doneAt, limits, probing }
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

  it("where the workers queue at MIN in flight, probes below it measure the floor, and the limit comes down to MIN", () => {
    // one contact alone takes 10 ms, 330 contacts/s at most: 3.3 in flight keep it busy, and
    // MIN already queues (as on one node of 2 cores)
    const pipe: Pipe = { floorMs: 10, perMs: () => 0.33 }
    const r = simulate(pipe, 40_000, 2048)
    const late = r.limits.slice(20_000).filter((_, i) => !r.probing[20_000 + i])
    expect(Math.max(...late)).toBe(CampaignPace.MIN)
    expect(rateOf(r, 20_000, 40_000)).toBeGreaterThan(0.95 * 0.33)
    // a probe held at MIN measures a queue (about MIN / 2 / rate, 50 ms) as the floor
    expect(r.pace.floorMs!).toBeLessThan(3 * pipe.floorMs)
    expect(Math.min(...r.limits.filter((_, i) => r.probing[i]))).toBeLessThan(CampaignPace.MIN)
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
