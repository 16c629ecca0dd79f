/**
 * The fire rate of one node's durable timers: a token bucket of `perSecond` tokens a second
 * (holding at most `burst`), and, for each fire it holds back, the wait after which to try
 * again. Held-back fires get successive slots at the rate (plus a random spread), so timers
 * that all became due during downtime come back a few at a time instead of all together,
 * each slot roughly when the bucket has refilled for it.
 */

/** A node's fire gate. */
export interface TimerGate {
  /** 0: fire now (a token was taken); otherwise the wait in ms before trying again. */
  readonly take: (now: number) => number
}

/** Options of a gate. */
export interface TimerGateOptions {
  /** Fires per second. */
  readonly perSecond: number
  /** Fires allowed at once after a quiet spell. Default a tenth of a second's worth (at least 1). */
  readonly burst?: number
  /** Largest random delay added to a held-back fire's slot, in ms. Default 0. */
  readonly spreadMs?: number
  /** Uniform random numbers in [0, 1) (tests pass a fixed one). Default `Math.random`. */
  readonly random?: () => number
}

/** Creates a gate. */
export const make = (options: TimerGateOptions): TimerGate => {
  const perSecond = Math.max(options.perSecond, 0.001)
  const interval = 1_000 / perSecond
  const burst = Math.max(1, options.burst ?? Math.ceil(perSecond / 10))
  const spreadMs = Math.max(0, options.spreadMs ?? 0)
  const random = options.random ?? Math.random
  let tokens = burst
  let refilledAt = Number.NEGATIVE_INFINITY
  // the last slot handed to a held-back fire; slots follow each other at the rate
  let lastSlot = Number.NEGATIVE_INFINITY
  return {
    take: (now) => {
      tokens = refilledAt === Number.NEGATIVE_INFINITY ? burst : Math.min(burst, tokens + Math.max(0, now - refilledAt) / interval)
      refilledAt = now
      if (tokens >= 1) {
        tokens -= 1
        return 0
      }
      // the first slot is when the bucket next holds a token; each further one an interval later
      const firstFree = now + (1 - tokens) * interval
      lastSlot = Math.max(lastSlot + interval, firstFree)
      return Math.max(1, Math.ceil(lastSlot - now + random() * spreadMs))
    }
  }
}
