/**
 * Pacing: how many contacts a campaign keeps in flight, adapted to what the deployment
 * delivers. A fixed window is wrong both ways: where the workers are the bottleneck, every
 * contact past what they can work at once only waits in a queue (a 512 window on one
 * node made each contact wait a second for work that takes a tenth of that), and where the
 * model is slow and the workers many, a fixed window caps a campaign below what they could
 * do.
 *
 * The pace works as a congestion window does, from two measurements the campaign actor
 * already has, taken over review intervals of completed contacts:
 *
 * - the completion rate (contacts finished per second), and its maximum over the last few
 *   intervals: what the deployment delivers for this campaign;
 * - the time a contact spends in flight, from its engage command to its completion (the
 *   contact actor reports when it was engaged; the two clocks are the campaign's node's and
 *   the contact's), averaged over the interval; its lowest value is the floor, the time a
 *   contact takes when it does not queue.
 *
 * The limit is a few times their product (the bandwidth-delay product): enough to keep the
 * pipeline full, and the batching that many contacts in flight allow (a node writes a
 * turn's ledger rows and reads a turn's contexts in one statement), with a margin; no more.
 * Below the bottleneck the rate grows with the limit, so the limit doubles each interval;
 * at the bottleneck the rate stops growing, and a contact spends a few floors in flight
 * (measured on one node at its limit: the same throughput as a fixed window of 512, at
 * less than half its latency per contact). A contact whose work includes waits
 * (touch gaps, calling hours, a lock held elsewhere) has a high floor, so its campaign gets
 * a high limit: waiting is not mistaken for queueing. Where the bottleneck is the node's
 * own work (a contact alone takes a few ms), the delay in the product is taken as
 * `MIN_DELAY_MS` at least: there, more contacts in flight means bigger batches, and so
 * more contacts a second, which a pipe's product does not see. The campaign's `window`
 * (its cap, lowered by a slow-down) bounds the limit from above, `MIN` from below (a probe
 * goes lower, down to `PROBE_MIN`).
 *
 * Pure functions over a small, persisted record: the pace survives a restart with the
 * campaign's state, and a replayed message gives the same result.
 */
import { Schema } from "effect"

/**
 * The limit a campaign starts with, before anything is measured: enough that contacts
 * which wait at once (calling hours, a lock another campaign holds) do not hold the whole
 * campaign at a handful until they finish.
 */
export const INITIAL = 128
/** The lowest limit. */
export const MIN = 32
/**
 * The limit is this many bandwidth-delay products. Below 4, the batching lost cost a node
 * at its limit 10-15% of its throughput; the latency per contact halves from 4 to 2.
 */
export const GAIN = 4
/** A review needs at least this many completions (and a quarter of the limit). */
export const MIN_SAMPLES = 16
/** A time in flight up to this many floors counts as unqueued. */
export const UNQUEUED = 1.25
/** An interval lasts this many times the time in flight it measures, at least. */
export const SPAN = 2
/** Completion rates of this many intervals are kept; the limit uses their maximum. */
export const RATES = 8
/**
 * A probe divides the limit by this. It must exceed `GAIN`: a probe that still queues
 * measures a floor of about `limit / PROBE_DIVISOR / rate`, from which the next limit is
 * `GAIN / PROBE_DIVISOR` of this one, so each probe brings the limit down until a probe no
 * longer queues (with a divisor at or under the gain, the limit would climb to the cap).
 */
export const PROBE_DIVISOR = 8
/**
 * A probe's limit goes no lower than this: below `MIN`, so that a probe measures a floor
 * even where the workers already queue at `MIN` contacts in flight. On one node of 2 cores
 * one contact alone takes 10-12 ms and 16 in flight already queue (70-100 ms); a probe held
 * at `MIN` (32) measured 90-130 ms as the floor, and the limit stayed at 130-190 (100-150
 * contacts in flight, p99 500-800 ms a contact). Probing from 16: 3,500-contact campaigns,
 * seven interleaved pairs, 299 against 309 contacts/s on average (within the machine's
 * noise), p99 per contact 492 against 621 ms on average.
 */
export const PROBE_MIN = 4
/** While contacts queue, the floor is measured again after this many intervals. */
export const PROBE_EVERY = 32
/**
 * The floor is the lowest of this many probes' measurements: a probe that lands on a
 * stall (a collection, a burst of other work) does not set it. On one node of 2 cores a
 * probe measured 7-15 ms, or now and then 100-220 ms, and the limit swung with it from
 * `MIN` to several hundred (p99 a contact 700 ms in a 10,000-contact campaign). A floor
 * that truly rose (a slower model) is taken after this many probes.
 */
export const PROBE_FLOORS = 2
/**
 * The delay in the bandwidth-delay product is this at least (in ms), so a contact may
 * spend about `GAIN` times it in flight (less on average: the window is topped up at half)
 * where the bottleneck is the node's own work and a contact alone takes a few ms. There,
 * more in flight makes bigger batches and more contacts a second, at a cost in latency. On
 * one node of 2 cores (10,000-contact campaigns in process, the limit held fixed, two runs
 * each), 32 / 64 / 128 / 256 in flight gave 379-390 / 368-450 / 489-512 / 514-544
 * contacts/s, at p99 138-150 / 232-241 / 351-362 / 558-565 ms a contact. With this delay
 * and `PROBE_FLOORS`, against the pace before them (the floor alone in the product, and the
 * last probe's floor): campaigns of 7,000-10,000 contacts in process, interleaved, 443
 * (6 runs) against 447 (9 runs) contacts/s on average, at p99 250-345 against 307-708 ms.
 */
export const MIN_DELAY_MS = 32

/** The persisted pace of a campaign. */
export const Pace = Schema.Struct({
  /** Contacts in flight at most, now (the campaign's window caps it). */
  limit: Schema.Int,
  /** The time in flight without queueing, in ms, as last measured (null: nothing measured yet). */
  floorMs: Schema.NullOr(Schema.Number),
  /** Completions per ms of the last intervals, most recent last. */
  rates: Schema.Array(Schema.Number),
  /** The current interval: when it began (0: nothing dispatched yet) and the latest completion in it. */
  since: Schema.Number,
  lastAt: Schema.Number,
  /** Completions in the interval; the times in flight of those measured, and how many. */
  done: Schema.Int,
  sumMs: Schema.Number,
  samples: Schema.Int,
  /** Intervals reviewed. */
  intervals: Schema.Int,
  /** Probing: only contacts dispatched from then on measure the floor (null: not probing). */
  probeFrom: Schema.NullOr(Schema.Number),
  /** What the last probes measured (`PROBE_FLOORS` at most), most recent last. */
  probes: Schema.optionalWith(Schema.Array(Schema.Number), { default: () => [] })
})
export type Pace = typeof Pace.Type

export const initial: Pace = {
  limit: INITIAL,
  floorMs: null,
  rates: [],
  since: 0,
  lastAt: 0,
  done: 0,
  sumMs: 0,
  samples: 0,
  intervals: 0,
  probeFrom: null,
  probes: []
}

/** Contacts are dispatched at `at`: the first dispatch opens the first interval. */
export const started = (p: Pace, at: number): Pace => (p.since === 0 ? { ...p, since: at, lastAt: at } : p)

/**
 * The bandwidth-delay product: the highest rate of the last intervals times the floor, or
 * where the floor is shorter than `MIN_DELAY_MS`, their mean rate times that. The mean, not
 * the highest: on a node whose own work is the bottleneck, intervals of a few dozen
 * completions read bursts, and the highest of them made the limit follow the noise (up to
 * twice the mean's).
 */
const product = (rates: ReadonlyArray<number>, floorMs: number): number =>
  rates.length === 0 ? 0 : Math.max(Math.max(...rates) * floorMs, (rates.reduce((a, b) => a + b, 0) / rates.length) * MIN_DELAY_MS)

/**
 * A contact finished at `at` (the completion's time), dispatched at `dispatchedAt` (its
 * engage command's time; unknown from a contact actor that does not report it, which then
 * counts for the rate only). At the end of an interval the limit is set anew, within
 * `[MIN, cap]` (a probe's within `[PROBE_MIN, cap]`).
 *
 * The floor is the lowest time in flight measured, except that a campaign which starts
 * (or comes to run) with more in flight than its bottleneck needs measures a queue, not a
 * floor, and the limit that follows would keep that queue. So when contacts queue, the
 * floor is measured again now and then, as a congestion window probes its round-trip
 * time: the limit drops to an eighth for one interval, and the lowest of what the last
 * probes' contacts took becomes the floor (so the floor can rise too, when the work got
 * slower).
 */
export const completed = (p: Pace, at: number, dispatchedAt: number | undefined, cap: number): Pace => {
  const measures = dispatchedAt !== undefined && (p.probeFrom === null || dispatchedAt >= p.probeFrom)
  const q: Pace = {
    ...p,
    lastAt: Math.max(p.lastAt, at),
    done: p.done + 1,
    sumMs: p.sumMs + (measures ? Math.max(0, at - dispatchedAt) : 0),
    samples: p.samples + (measures ? 1 : 0)
  }
  if (q.samples < Math.max(MIN_SAMPLES, Math.ceil(p.limit / 4))) return q
  const measured = q.sumMs / q.samples
  const elapsed = q.lastAt - q.since
  // the rate is measured over an interval long against the time in flight: contacts
  // dispatched together finish together, and a short interval would read their burst
  if (elapsed <= 0 || elapsed < SPAN * measured) return q
  const next = { since: q.lastAt, lastAt: q.lastAt, done: 0, sumMs: 0, samples: 0, intervals: p.intervals + 1 }
  if (p.probeFrom !== null) {
    // a probe's rate is low by design: only its floor is kept
    const probes = [...p.probes, measured].slice(-PROBE_FLOORS)
    const floorMs = Math.min(...probes)
    const bdp = product(p.rates, floorMs)
    return { ...next, limit: Math.max(MIN, Math.min(cap, Math.ceil(GAIN * bdp))), floorMs, rates: p.rates, probeFrom: null, probes }
  }
  const floorMs = p.floorMs === null ? measured : Math.min(p.floorMs, measured)
  const rates = [...p.rates, q.done / elapsed].slice(-RATES)
  const queued = measured > UNQUEUED * floorMs
  if ((next.intervals === 1 || (queued && next.intervals % PROBE_EVERY === 0)) && p.limit > MIN) {
    return { ...next, limit: Math.max(PROBE_MIN, Math.ceil(p.limit / PROBE_DIVISOR)), floorMs, rates, probeFrom: q.lastAt, probes: p.probes }
  }
  const bdp = product(rates, floorMs)
  // nothing queues (the time in flight is still the floor's): at least double, as a slow
  // start does, rather than grow by what the refill at half keeps in flight
  const target = queued ? GAIN * bdp : Math.max(GAIN * bdp, 2 * p.limit)
  return { ...next, limit: Math.max(MIN, Math.min(cap, Math.ceil(target))), floorMs, rates, probeFrom: null, probes: p.probes }
}

/** Contacts in flight at most now: the pace's limit within the campaign's window. */
export const limitOf = (p: Pace, window: number): number => Math.max(1, Math.min(window, p.limit))
