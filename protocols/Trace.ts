/**
 * W3C trace context (`traceparent`) as carried in every envelope: parsing it into the
 * ids a tracer needs to continue the trace, formatting ids back into a header, running
 * the handling of one message in a span that continues the trace of its envelope, and
 * reading the current span's context (what a message sent from inside that span carries).
 */
import { Effect, Fiber, FiberRef, Option, Tracer } from "effect"

/** The parts of a `traceparent` header. */
export interface TraceParent {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

const re = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** Parses a `traceparent`; undefined when it is not a valid version-00 header. */
export const parse = (traceparent: string): TraceParent | undefined => {
  const m = re.exec(traceparent)
  if (m === null || m[2] === "0".repeat(32) || m[3] === "0".repeat(16)) return undefined
  return { traceId: m[2]!, spanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1 }
}

/** Formats a `traceparent` from a trace and span id. */
export const format = (traceId: string, spanId: string, sampled = true): string =>
  `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`

/** The span a `traceparent` names, as the parent of spans continuing its trace here; undefined when not valid. */
export const externalSpan = (traceparent: string): Tracer.ExternalSpan | undefined => {
  const p = parse(traceparent)
  return p === undefined ? undefined : Tracer.externalSpan({ traceId: p.traceId, spanId: p.spanId, sampled: p.sampled })
}

/** What a span continuing a trace records. */
export interface ContinueOptions {
  /** Default `consumer` (a message taken from NATS). */
  readonly kind?: Tracer.SpanKind
  /** The span's attributes, or how to make them (only called when a span is made). */
  readonly attributes?: Record<string, unknown> | (() => Record<string, unknown>)
}

/** Effect's built-in tracer: its spans are recorded nowhere (no exporter is configured). */
const nativeTracer = Effect.runSync(Effect.tracer)

/**
 * Runs `effect` in a span named `name` whose parent is the span `traceparent` names, so one
 * trace follows a message across NATS hops. A root span when `traceparent` is not valid:
 * never a child of whatever span happens to be current (a node's own, a subscription's).
 * Without a configured tracer no span is made (one would cost about 10 µs and be recorded
 * nowhere), and the spans `effect` itself opens (`Effect.fn`, `withSpan`, each SQL
 * statement) are disabled too: each would cost 15-20 µs, mostly capturing a stack trace,
 * and a handler opens tens of them. The trace still continues through the envelopes (see
 * `current`).
 */
export const continueTrace = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  traceparent: string,
  options: ContinueOptions = {}
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const tracer = fiber.currentTracer
    if (tracer === nativeTracer) {
      // already off in fibers a host forks (see `untraced`): nothing to switch, and
      // switching a fiber ref for the handling costs a dozen interpreter steps a message
      return fiber.getFiberRef(FiberRef.currentTracerEnabled) ? Effect.withTracerEnabled(effect, false) : effect
    }
    const parent = externalSpan(traceparent)
    return Effect.withSpan(effect, name, {
      ...(parent === undefined ? { root: true } : { parent }),
      kind: options.kind ?? "consumer",
      // a stack trace per span (Effect's default) would cost more than the span, and point here
      captureStackTrace: false,
      ...(options.attributes === undefined ? {} : { attributes: typeof options.attributes === "function" ? options.attributes() : options.attributes })
    })
  })

/**
 * `effect` with tracing off when no tracer is configured (Effect's built-in one records
 * nothing): the runtime a message host captures this way forks every message's fiber with
 * tracing off from the start, where `continueTrace` would otherwise switch it off around
 * each handling. With a configured tracer, `effect` as it is.
 */
export const untraced = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => (tracer === nativeTracer ? Effect.withTracerEnabled(effect, false) : effect))

/**
 * `Effect.withSpan(name, options)` that makes a span only with a configured tracer. With
 * Effect's built-in tracer a span is recorded nowhere, yet costs about 5 µs even while
 * disabled (as inside a message's handling, see `continueTrace`); the spans a node opens for
 * every contact use this instead.
 */
export const span =
  (name: string, options?: Tracer.SpanOptions) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) => (tracer === nativeTracer ? effect : Effect.withSpan(effect, name, options)))

/** The `traceparent` of a span. */
export const ofSpan = (span: Tracer.AnySpan): string => format(span.traceId, span.spanId, span.sampled)

/**
 * The `traceparent` of the span current in the running fiber, read synchronously (code
 * called from a handler, such as an outbox's `send`); undefined outside a fiber or a span,
 * when the span's ids are not W3C ids, or without a configured tracer (then `continueTrace`
 * made no span, and a span current inside a handler would start a trace of its own).
 */
export const current = (): string | undefined => {
  const fiber = Fiber.getCurrentFiber()
  if (Option.isNone(fiber) || fiber.value.currentTracer === nativeTracer) return undefined
  const span = fiber.value.currentSpan
  if (span === undefined) return undefined
  // a span from a foreign tracer may not have W3C ids: the envelope schema would refuse it
  const traceparent = ofSpan(span)
  return re.test(traceparent) ? traceparent : undefined
}

/**
 * `Effect.annotateCurrentSpan` for hot paths: outside a span (always, without a configured
 * tracer: see `continueTrace`) Effect's version builds and throws away an exception, stack
 * trace included; this one reads the fiber's current span and does nothing without one.
 */
export const annotate = (attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const span = fiber.currentSpan
    if (span !== undefined && span._tag === "Span") for (const key in attributes) span.attribute(key, attributes[key])
    return Effect.void
  })
