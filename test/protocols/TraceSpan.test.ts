/**
 * `Trace.span` makes a span only with a configured tracer: with Effect's built-in tracer the
 * effect runs as it is (no span current inside it), with another tracer as `Effect.withSpan`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Tracer } from "effect"
import { Trace } from "../../protocols/index.js"

const currentName = Effect.map(Effect.option(Effect.currentSpan), Option.map((s) => s.name))

describe("Trace.span", () => {
  it.effect("with Effect's built-in tracer: no span", () =>
    Effect.gen(function* () {
      expect(yield* Trace.span("inner")(currentName)).toEqual(Option.none())
      expect(yield* Effect.withSpan(currentName, "inner")).toEqual(Option.some("inner"))
    }))

  it.effect("with a configured tracer: a span, as Effect.withSpan makes it", () =>
    Effect.gen(function* () {
      const made: Array<string> = []
      const native = yield* Effect.tracer
      const recording = Tracer.make({
        span: (name, ...rest) => {
          made.push(name)
          return native.span(name, ...rest)
        },
        context: native.context
      })
      const name = yield* Trace.span("inner", { attributes: { a: 1 } })(currentName).pipe(Effect.withTracer(recording))
      expect(name).toEqual(Option.some("inner"))
      expect(made).toEqual(["inner"])
    }))
})
