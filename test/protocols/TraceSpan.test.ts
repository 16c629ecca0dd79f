/**
 * `Trace.span` makes a span only with a configured tracer: with Effect's built-in tracer the
 * effect runs as it is (no span current inside it), with another tracer as `Effect.withSpan`.
 * `Trace.untraced` and `Trace.continueTrace`: with the built-in tracer, a handling runs with
 * tracing off (spans opened inside it are no-ops), whether or not the host's runtime already
 * had it off; with a configured tracer, the handling is a span continuing the envelope's trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberRef, Option, Runtime, Tracer } from "effect"
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

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
const tracingOn = FiberRef.get(FiberRef.currentTracerEnabled)

describe("Trace.untraced and continueTrace", () => {
  it.effect("with Effect's built-in tracer: a runtime captured untraced forks fibers with tracing off, and a handling stays off", () =>
    Effect.gen(function* () {
      const runtime = yield* Trace.untraced(Effect.runtime<never>())
      const inForked = yield* Effect.promise(() => Runtime.runPromise(runtime)(Effect.all([tracingOn, Trace.continueTrace(tracingOn, "h", TRACEPARENT)])))
      expect(inForked).toEqual([false, false])
      // a fiber with tracing on (not forked from such a runtime): switched off for the handling only
      expect(yield* Effect.all([tracingOn, Trace.continueTrace(tracingOn, "h", TRACEPARENT), tracingOn])).toEqual([true, false, true])
      expect(yield* Trace.continueTrace(currentName, "h", TRACEPARENT)).toEqual(Option.none())
    }))

  it.effect("with a configured tracer: untraced changes nothing, and the handling is a span of the envelope's trace", () =>
    Effect.gen(function* () {
      const native = yield* Effect.tracer
      const recording = Tracer.make({ span: (...args) => native.span(...args), context: native.context })
      const result = yield* Effect.gen(function* () {
        const runtime = yield* Trace.untraced(Effect.runtime<never>())
        const inner = Effect.all([tracingOn, Effect.map(Effect.currentSpan, (s) => [s.name, s.traceId] as const)])
        return yield* Effect.promise(() => Runtime.runPromise(runtime)(Trace.continueTrace(inner, "handle", TRACEPARENT)))
      }).pipe(Effect.withTracer(recording))
      expect(result).toEqual([true, ["handle", "0af7651916cd43dd8448eb211c80319c"]])
    }))
})
