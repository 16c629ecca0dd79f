/**
 * `Supervision.supervised` against `Effect.retry` with the same schedule: the same attempts
 * at the same (test clock) times with the same seeded jitter, the same result, the same
 * final error, a non-retryable error not retried. Only the first successful attempt is
 * cheaper, which the hosts rely on for every message.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Random, Schedule, TestClock } from "effect"
import * as Supervision from "../../runtime/Supervision.js"

const policy: Supervision.SupervisionPolicy = { maxRetries: 4, initialDelay: "100 millis", maxDelay: "1 second" }

/** An attempt that fails `failures` times (retryable unless said), recording when it ran (from `start`). */
const flaky = (failures: number, retryable: boolean, start: number) => {
  const at: Array<number> = []
  const attempt = Effect.gen(function* () {
    at.push(Math.round(((yield* TestClock.currentTimeMillis) - start) * 1000) / 1000)
    if (at.length <= failures) return yield* Effect.fail({ _tag: "Flaky", n: at.length, retryable })
    return `ok after ${at.length}`
  })
  return { at, attempt }
}

type Runner = (attempt: Effect.Effect<string, { _tag: string; n: number }>) => Effect.Effect<string, { _tag: string; n: number }>
const runners: ReadonlyArray<readonly [string, Runner]> = [
  ["Effect.retry", (attempt) => Effect.retry(attempt, Supervision.schedule(policy))],
  ["supervised", (attempt) => Supervision.supervised(attempt, policy)]
]

/** Runs under a seeded random and the test clock, advancing it until done. */
const run = (runner: Runner, failures: number, retryable = true) =>
  Effect.gen(function* () {
    const { at, attempt } = flaky(failures, retryable, yield* TestClock.currentTimeMillis)
    const fiber = yield* Effect.fork(Effect.exit(runner(attempt)).pipe(Effect.withRandom(Random.make("seed"))))
    for (let i = 0; i < 20; i++) yield* TestClock.adjust("1 second")
    return { exit: yield* Fiber.join(fiber), at }
  })

describe("Supervision.supervised", () => {
  for (const failures of [0, 2, 4, 7]) {
    it.effect(`${failures} failure(s): the same attempts, times and result as Effect.retry`, () =>
      Effect.gen(function* () {
        const [retry, supervised] = [yield* run(runners[0]![1], failures), yield* run(runners[1]![1], failures)]
        expect(supervised.at).toEqual(retry.at)
        expect(supervised.exit).toEqual(retry.exit)
        expect(supervised.at.length).toBe(Math.min(failures, policy.maxRetries) + 1)
        if (failures <= policy.maxRetries) expect(supervised.exit).toEqual(Exit.succeed(`ok after ${failures + 1}`))
        else expect(supervised.exit).toEqual(Exit.fail({ _tag: "Flaky", n: policy.maxRetries + 1, retryable: true }))
      }))
  }

  it.effect("a non-retryable failure is not retried", () =>
    Effect.gen(function* () {
      const supervised = yield* run(runners[1]![1], 3, false)
      expect(supervised.at.length).toBe(1)
      expect(supervised.exit).toEqual(Exit.fail({ _tag: "Flaky", n: 1, retryable: false }))
      expect(supervised).toEqual(yield* run(runners[0]![1], 3, false))
    }))

  it.effect("retrying with a schedule that stops on some errors: as Effect.retry with `while`", () =>
    Effect.gen(function* () {
      const policy = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(5)))
      const stopsOn = (n: number) => (e: { n: number }) => e.n !== n
      for (const stopAt of [1, 3, 9]) {
        const viaRetry = yield* run((a) => Effect.retry(a, { schedule: policy, while: stopsOn(stopAt) }), 7)
        const viaRetrying = yield* run((a) => Supervision.retrying(a, policy.pipe(Schedule.whileInput(stopsOn(stopAt)))), 7)
        expect(viaRetrying).toEqual(viaRetry)
        expect(viaRetrying.at.length).toBe(Math.min(stopAt, 6))
      }
    }))

  it.effect("an outage is waited out: retried every maxDelay past maxRetries, until the outage window has passed", () =>
    Effect.gen(function* () {
      const outagePolicy: Supervision.SupervisionPolicy = { ...policy, outageWindow: "30 seconds" }
      /** Fails `failures` times with `reason`, then succeeds. */
      const failing = (failures: number, reason: string, retryable?: boolean) => {
        let n = 0
        return Effect.suspend(() =>
          ++n <= failures ? Effect.fail({ _tag: "StorageError", reason, n, ...(retryable === undefined ? {} : { retryable }) }) : Effect.succeed(n)
        )
      }
      const outcome = (attempt: Effect.Effect<number, { n: number }>) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.fork(Effect.exit(Supervision.supervised(attempt, outagePolicy)))
          for (let i = 0; i < 60; i++) yield* TestClock.adjust("1 second")
          return yield* Fiber.join(fiber)
        })
      // a database down for 20 s (about 20 failures at up to 1.2 s apart): waited out
      expect(yield* outcome(failing(20, "Unavailable"))).toEqual(Exit.succeed(21))
      // one down for longer than the window: the last failure is the result
      const long = yield* outcome(failing(1_000, "Unavailable"))
      expect(Exit.isFailure(long)).toBe(true)
      // an outage that says retrying cannot help is not retried
      expect(yield* outcome(failing(20, "Unavailable", false))).toEqual(Exit.fail({ _tag: "StorageError", reason: "Unavailable", n: 1, retryable: false }))
      // any other retryable failure: maxRetries, as before
      expect(yield* outcome(failing(20, "Conflict"))).toEqual(Exit.fail({ _tag: "StorageError", reason: "Conflict", n: policy.maxRetries + 1 }))
    }))
})
