/**
 * A circuit breaker per model. After `failureThreshold` consecutive failed calls (each
 * already retried by our policy) the circuit opens: calls skip the model and the router's
 * chain falls back to the next (cheaper or offline) one. After `cooldown` one probe call
 * is let through (half-open); its success closes the circuit, its failure opens it again.
 * State is per process: each node learns a provider's health for itself.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"

/** The state of one circuit. */
export type CircuitState = "closed" | "open" | "half-open"

/** Settings of the breaker. */
export interface BreakerSettings {
  /** Consecutive failures that open a circuit. Default 5. */
  readonly failureThreshold: number
  /** How long a circuit stays open before a probe. Default 30 s. */
  readonly cooldown: Duration.DurationInput
}

/** Default settings. */
export const defaults: BreakerSettings = { failureThreshold: 5, cooldown: "30 seconds" }

/** The breaker. */
export interface CircuitBreakerService {
  /** Whether a call to `id` may go ahead now (a half-open circuit lets one probe through). */
  readonly permit: (id: string) => Effect.Effect<boolean>
  readonly onSuccess: (id: string) => Effect.Effect<void>
  readonly onFailure: (id: string) => Effect.Effect<void>
  readonly state: (id: string) => Effect.Effect<CircuitState>
}

/** The circuit breaker service. */
export class CircuitBreaker extends Context.Tag("nexus/llm/CircuitBreaker")<CircuitBreaker, CircuitBreakerService>() {}

interface Circuit {
  failures: number
  openedAt: number | null
  probing: boolean
}

/** A breaker with the given settings. */
export const make = (settings: BreakerSettings = defaults): CircuitBreakerService => {
  const circuits = new Map<string, Circuit>()
  const cooldownMs = Duration.toMillis(settings.cooldown)
  const get = (id: string): Circuit => {
    let c = circuits.get(id)
    if (c === undefined) {
      c = { failures: 0, openedAt: null, probing: false }
      circuits.set(id, c)
    }
    return c
  }
  const stateAt = (c: Circuit, now: number): CircuitState =>
    c.openedAt === null ? "closed" : now - c.openedAt >= cooldownMs ? "half-open" : "open"

  return {
    permit: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const c = get(id)
        const s = stateAt(c, now)
        if (s === "closed") return true
        if (s === "open" || c.probing) return false
        c.probing = true
        return true
      }),
    onSuccess: (id) =>
      Effect.sync(() => {
        const c = get(id)
        c.failures = 0
        c.openedAt = null
        c.probing = false
      }),
    onFailure: (id) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const c = get(id)
        c.failures++
        if (c.probing || c.failures >= settings.failureThreshold) c.openedAt = now
        c.probing = false
      }),
    state: (id) => Effect.map(Clock.currentTimeMillis, (now) => stateAt(get(id), now))
  }
}

/** A breaker with the given settings, as a layer. */
export const layer = (settings: BreakerSettings = defaults): Layer.Layer<CircuitBreaker> =>
  Layer.sync(CircuitBreaker, () => make(settings))
