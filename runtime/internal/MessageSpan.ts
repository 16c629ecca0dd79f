/**
 * The span of one message handled by this node (an actor's step, an agent's job, a routed
 * command): a `consumer` span whose parent is the span named by the envelope's
 * `traceparent`, so one trace follows a contact across NATS hops. The messages the handler
 * sends carry the context of the span current when they are sent (see `Outbox`), so they
 * are its children. Without a configured tracer no span is made (the hot path pays a
 * lookup of the current tracer) and the envelopes carry the trace on by themselves.
 */
import type { JsMsg } from "@nats-io/jetstream"
import type { Effect } from "effect"
import { type Message, Trace } from "../../protocols/index.js"

/** What the runtime does with a message: names its span. */
export type Operation = "actor.handle" | "agent.handle" | "command.route"

/** Runs the handling of `decoded` (delivered as `msg`, handled by `receiver`) in its span. */
export const around = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  operation: Operation,
  msg: JsMsg,
  decoded: Message.Decoded,
  receiver: string
): Effect.Effect<A, E, R> => {
  const env = decoded.envelope
  return Trace.continueTrace(effect, operation, env.trace.traceparent, {
    kind: "consumer",
    // made only when a span is (with a configured tracer), not for every message handled
    attributes: () => ({
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.destination.name": msg.subject,
      "messaging.message.id": env.id,
      "nexus.type": decoded.type,
      "nexus.receiver": receiver,
      "nexus.sender": env.from,
      "nexus.tenant": env.tenant,
      "nexus.correlation_id": env.correlationId,
      "nexus.stream_seq": msg.seq,
      "nexus.delivery": msg.info?.deliveryCount ?? 1
    })
  })
}
