/**
 * The outbox's ids and trace context: child ids derive from the cause's id alone (a re-run
 * publishes the same ids, whatever span it runs in); a message sent inside a span that
 * continues the cause's trace is that span's child; without a configured tracer no span is
 * made and the child keeps the cause's trace id with a span id derived from its own id.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"
import { Address, Campaign, type Envelope, Ids, Trace } from "../../protocols/index.js"
import { Outbox } from "../../runtime/index.js"

const cause: Envelope.Envelope = {
  id: Ids.MessageId.make("cause-1"),
  type: Campaign.EngageContact.type,
  v: 1,
  tenant: Ids.TenantId.make("t"),
  from: Address.actor("campaign", "c"),
  to: Address.actor("contact", "x"),
  correlationId: "c",
  causationId: null,
  ts: 1,
  trace: { traceparent: Trace.format("a".repeat(32), "b".repeat(16)) },
  payload: {}
}
const draft = { campaignId: Ids.CampaignId.make("c") } as unknown as typeof Campaign.DraftRequested.payload.Type

/** Runs a handler's sends inside a span continuing the cause's trace; returns the outbox. */
const handle = Trace.continueTrace(
  Effect.sync(() => {
    const outbox = new Outbox.Outbox(cause, Address.actor("contact", "x"))
    outbox.send(Address.agent("content"), Campaign.DraftRequested, draft)
    outbox.send(Address.agent("content"), Campaign.DraftRequested, draft)
    return outbox
  }),
  "actor.handle",
  cause.trace.traceparent
)

describe("Outbox", () => {
  it.effect("without a tracer: deterministic ids, the cause's trace id, derived span ids", () =>
    Effect.gen(function* () {
      const a = yield* handle
      const b = yield* handle
      const ids = a.messages.map((m) => m.envelope.id)
      expect(ids).toEqual([Outbox.childId("cause-1", 0), Outbox.childId("cause-1", 1)])
      expect(b.messages.map((m) => m.envelope.id), "a re-run sends the same ids").toEqual(ids)
      expect(a.messages.map((m) => m.envelope.trace.traceparent)).toEqual(ids.map((id) => Outbox.childTraceparent(cause.trace.traceparent, id)))
      expect(Trace.parse(a.messages[0]!.envelope.trace.traceparent)!.traceId).toBe("a".repeat(32))
    }))

  it.effect("with a tracer: children of the handling span, ids unchanged", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function* () {
      const a = yield* handle
      const [span] = exporter.getFinishedSpans()
      expect(span?.name).toBe("actor.handle")
      expect(span!.parentSpanContext?.spanId, "the span continues the cause's").toBe("b".repeat(16))
      const parents = a.messages.map((m) => Trace.parse(m.envelope.trace.traceparent)!)
      expect(parents.map((p) => [p.traceId, p.spanId])).toEqual([
        ["a".repeat(32), span!.spanContext().spanId],
        ["a".repeat(32), span!.spanContext().spanId]
      ])
      expect(a.messages.map((m) => m.envelope.id), "ids never depend on the trace").toEqual([Outbox.childId("cause-1", 0), Outbox.childId("cause-1", 1)])
    }).pipe(Effect.provide(NodeSdk.layer(() => ({ resource: { serviceName: "outbox-test" }, spanProcessor: new SimpleSpanProcessor(exporter) }))))
  })
})
