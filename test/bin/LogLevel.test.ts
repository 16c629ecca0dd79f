import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, FiberRef, Layer, LogLevel } from "effect"
import { logging } from "../../bin/Launch.js"

const levelWith = (value: string) =>
  Effect.gen(function* () {
    return yield* FiberRef.get(FiberRef.currentMinimumLogLevel)
  }).pipe(
    Effect.provide(logging.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["LOG_LEVEL", value]])))))),
    Effect.exit
  )

describe("LOG_LEVEL", () => {
  it.effect("accepts a level's name or label in any case", () =>
    Effect.gen(function* () {
      for (const [raw, want] of [["warning", LogLevel.Warning], ["WARN", LogLevel.Warning], ["Info", LogLevel.Info], ["debug", LogLevel.Debug], ["none", LogLevel.None]] as const) {
        const got = yield* levelWith(raw)
        expect(Exit.isSuccess(got) ? got.value._tag : Cause.pretty(got.cause), raw).toBe(want._tag)
      }
    }))
  it.effect("refuses anything else with the levels it accepts", () =>
    Effect.gen(function* () {
      const got = yield* levelWith("loud")
      expect(Exit.isFailure(got)).toBe(true)
      expect(Exit.isFailure(got) ? Cause.pretty(got.cause) : "").toMatch(/Expected a log level \(All, .*Warning.*\) but received "loud"/)
    }))
})
