/**
 * The envelope every message travels in, on every subject. The payload is decoded by the
 * schema registered for `type` (see `Message.ts`); the envelope itself is decoded first.
 */
import { Schema } from "effect"
import { Address } from "./Address.js"
import { MessageId, TenantId } from "./Ids.js"

/** W3C trace context carried across NATS hops. */
export const TraceContext = Schema.Struct({
  traceparent: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/)),
  tracestate: Schema.optional(Schema.String)
})
export type TraceContext = typeof TraceContext.Type

/** The wire envelope (JSON). */
export const Envelope = Schema.Struct({
  /** Unique, deterministic id; the JetStream de-duplication key. */
  id: MessageId,
  /** Message type, e.g. `contact.engage`. */
  type: Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/)),
  /** Schema version of the payload. */
  v: Schema.Int.pipe(Schema.positive()),
  tenant: TenantId,
  from: Address,
  to: Address,
  /** Id of the conversation (e.g. the campaign start command) this message belongs to. */
  correlationId: Schema.String,
  /** Id of the message that caused this one (null for external input). */
  causationId: Schema.NullOr(Schema.String),
  /** Epoch milliseconds at creation. */
  ts: Schema.Number,
  trace: TraceContext,
  /**
   * Where replies to this message, and the notice of its failure, go when not to `from`:
   * set on a message forwarded on someone's behalf (absent: `from`).
   */
  replyTo: Schema.optional(Address),
  payload: Schema.Unknown
})
export type Envelope = typeof Envelope.Type
/** The encoded (JSON) form of an envelope. */
export type EnvelopeEncoded = typeof Envelope.Encoded
