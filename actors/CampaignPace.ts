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
 * a high limit: waiting is not mistaken for queueing. The campaign's `window` (its cap,
 * lowered by a slow-down) bounds the limit from above, `MIN` from below (a probe goes
 * lower, down to `PROBE_MIN`).
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
  probeFrom: Schema.NullOr(Schema.Number)
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
  probeFrom: null
}

/** Contacts are dispatched at `at`: the first dispatch opens the first interval. */
export const started = (p: Pace, at: number): Pace => (p.since === 0 ? { ...p, since: at, lastAt: at } : p)

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
 * time: the limit drops to an eighth for one interval, and what the contacts dispatched
 * under it take becomes the floor (so the floor can rise too, when the work got slower).
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
    const bdp = Math.max(...p.rates) * measured
    return { ...next, limit: Math.max(MIN, Math.min(cap, Math.ceil(GAIN * bdp))), floorMs: measured, rates: p.rates, probeFrom: null }
  }
  const floorMs = p.floorMs === null ? measured : Math.min(p.floorMs, measured)
  const rates = [...p.rates, q.done / elapsed].slice(-RATES)
  const queued = measured > UNQUEUED * floorMs
  if ((next.intervals === 1 || (queued && next.intervals % PROBE_EVERY === 0)) && p.limit > MIN) {
    return { ...next, limit: Math.max(PROBE_MIN, Math.ceil(p.limit / PROBE_DIVISOR)), floorMs, rates, probeFrom: q.lastAt }
  }
  const bdp = Math.max(...rates) * floorMs
  // nothing queues (the time in flight is still the floor's): at least double, as a slow
  // start does, rather than grow by what the refill at half keeps in flight
  const target = queued ? GAIN * bdp : Math.max(GAIN * bdp, 2 * p.limit)
  return { ...next, limit: Math.max(MIN, Math.min(cap, Math.ceil(target))), floorMs, rates, probeFrom: null }
}

/** Contacts in flight at most now: the pace's limit within the campaign's window. */
export const limitOf = (p: Pace, window: number): number => Math.max(1, Math.min(window, p.limit))
