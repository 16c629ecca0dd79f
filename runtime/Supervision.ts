/**
 * Supervision policy of actors and agents: how a failing handler is retried (exponential
 * backoff with jitter, only while the error says it is retryable; an outage of something it
 * needs is waited out for a while) and what happens after the last attempt (the message is
 * dead-lettered with its error; the actor may escalate).
 */
import { type Duration, Effect, Schedule } from "effect"
import { isRetryable } from "./Errors.js"

/** How a failing handler is retried. */
export interface SupervisionPolicy {
  /** Attempts after the first. Default 4. */
  readonly maxRetries: number
  /** First backoff delay. Default 100 ms; doubles each retry. */
  readonly initialDelay: Duration.DurationInput
  /** Cap of a single delay. Default 5 s. */
  readonly maxDelay: Duration.DurationInput
  /**
   * How long an outage is waited out: a failure whose error says a dependency cannot be
   * reached (`isOutage`: a database down, say) is retried every `maxDelay`, past
   * `maxRetries`, until this long after the first attempt. Default 2 minutes.
   */
  readonly outageWindow?: Duration.DurationInput
}

/** The default policy: 4 retries, 100 ms doubling to at most 5 s, jittered; outages waited out for 2 minutes. */
export const defaultPolicy: SupervisionPolicy = { maxRetries: 4, initialDelay: "100 millis", maxDelay: "5 seconds" }

const DEFAULT_OUTAGE_WINDOW: Duration.DurationInput = "2 minutes"

/**
 * Whether an error says a dependency cannot be reached right now (its `reason` is
 * `Unavailable`, as a storage error's is when its database is down): trying again helps
 * once the outage ends, and a message failed for it is not dead-lettered before then. A
 * handler that ran out of retries in a short outage lost its message's effect for good
 * (a campaign that could not count a contact's completion never completed).
 */
export const isOutage = (e: unknown): boolean => (e as { reason?: unknown } | null)?.reason === "Unavailable"

/**
 * The retry schedule of a policy: `maxRetries` retries with exponential backoff while the
 * error is retryable, and, while it is an outage, retries every `maxDelay` until the
 * outage window has passed. Stops at once on a non-retryable error.
 */
export const schedule = (policy: SupervisionPolicy) =>
  Schedule.union(
    Schedule.exponential(policy.initialDelay, 2).pipe(
      Schedule.either(Schedule.spaced(policy.maxDelay)),
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(policy.maxRetries)),
      Schedule.whileInput((e: unknown) => isRetryable(e))
    ),
    Schedule.spaced(policy.maxDelay).pipe(
      Schedule.jittered,
      Schedule.upTo(policy.outageWindow ?? DEFAULT_OUTAGE_WINDOW),
      Schedule.whileInput((e: unknown) => isRetryable(e) && isOutage(e))
    )
  )

/**
 * What `Effect.retry(effect, policy)` does, except that a first attempt that succeeds (the
 * common case: the runtime retries every handler, commit and publish) builds no retry
 * state. After a first failure the schedule takes over from that failure: it sees the same
 * errors and waits the same delays as a retry from the start would.
 */
export const retrying = <A, E, R, Out, R2>(effect: Effect.Effect<A, E, R>, policy: Schedule.Schedule<Out, E, R2>): Effect.Effect<A, E, R | R2> =>
  Effect.catchAll(effect, (first) => {
    // the retry's first run replays the failure already seen; the next ones run `effect` again
    let replayed = false
    return Effect.retry(
      Effect.suspend(() => (replayed ? effect : ((replayed = true), Effect.fail(first)))),
      policy
    )
  })

/** Schedules of the policies in use, built once per policy (handlers run it for every message). */
const schedules = new WeakMap<SupervisionPolicy, ReturnType<typeof schedule>>()

const scheduleOf = (policy: SupervisionPolicy) => {
  let s = schedules.get(policy)
  if (s === undefined) schedules.set(policy, (s = schedule(policy)))
  return s
}

/** Runs a handler's `attempt` under `policy` (`retrying` with `schedule(policy)`). */
export const supervised = <A, E, R>(attempt: Effect.Effect<A, E, R>, policy: SupervisionPolicy): Effect.Effect<A, E, R> =>
  retrying(attempt, scheduleOf(policy))
