/**
 * Vapi server messages (the webhook bodies Vapi POSTs to its "server URL") as far as the
 * runtime reads them, and the inbound messages the gateway publishes for them on
 * `<p>.<tenant>.in.vapi.<callId>.<event>`. Vapi sends no event id, may send a message twice
 * and out of order: the call id plus the message type identify a message, and the
 * end-of-call report is the source of truth for a call's outcome.
 */
import { Schema } from "effect"
import * as Message from "./Message.js"

/** What ties a call to the runtime (set as `call.metadata` when the call is placed). */
export const CallMetadata = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  campaignId: Schema.optional(Schema.String),
  contactId: Schema.optional(Schema.String),
  idempotencyKey: Schema.optional(Schema.String)
})
export type CallMetadata = typeof CallMetadata.Type

/** The call object inside a server message (only the fields read here; others are ignored). */
export const Call = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
  metadata: Schema.optional(Schema.NullOr(CallMetadata))
})

/** `status-update`: the call moved to a new status. */
export const StatusUpdate = Schema.Struct({
  type: Schema.Literal("status-update"),
  status: Schema.Literal("scheduled", "queued", "ringing", "in-progress", "forwarding", "ended"),
  call: Call,
  endedReason: Schema.optional(Schema.String),
  timestamp: Schema.optional(Schema.Number)
})

/** `end-of-call-report`: the final account of a call (the truth about its outcome). */
export const EndOfCallReport = Schema.Struct({
  type: Schema.Literal("end-of-call-report"),
  call: Call,
  endedReason: Schema.String,
  startedAt: Schema.optional(Schema.String),
  endedAt: Schema.optional(Schema.String),
  durationSeconds: Schema.optional(Schema.Number),
  cost: Schema.optional(Schema.Number),
  artifact: Schema.optional(Schema.Struct({ transcript: Schema.optional(Schema.String) })),
  analysis: Schema.optional(
    Schema.Struct({ summary: Schema.optional(Schema.String), successEvaluation: Schema.optional(Schema.Unknown) })
  ),
  timestamp: Schema.optional(Schema.Number)
})

/** The message types the gateway accepts (Vapi sends others only when configured to). */
export const ServerMessage = Schema.Union(StatusUpdate, EndOfCallReport)
export type ServerMessage = typeof ServerMessage.Type

/** A webhook body: `{ message: ServerMessage }`. */
export const WebhookBody = Schema.Struct({ message: ServerMessage })
export type WebhookBody = typeof WebhookBody.Type

const Ref = Schema.NullOr(Schema.String)

/** Inbound: a Vapi call changed status (informational; may arrive late or twice). */
export const CallStatusChanged = Message.define(
  "inbound.vapi-call-status",
  Schema.Struct({
    callId: Schema.String,
    status: Schema.String,
    campaignId: Ref,
    contactId: Ref,
    idempotencyKey: Ref,
    at: Schema.Number
  }),
  { description: "A Vapi call changed status (from the Vapi webhook; informational, may repeat or arrive late)." }
)

/** Inbound: a Vapi call ended; the authoritative outcome of the call. */
export const CallEnded = Message.define(
  "inbound.vapi-call-ended",
  Schema.Struct({
    callId: Schema.String,
    campaignId: Ref,
    contactId: Ref,
    idempotencyKey: Ref,
    endedReason: Schema.String,
    durationSec: Schema.NullOr(Schema.Number),
    costUsd: Schema.NullOr(Schema.Number),
    transcript: Ref,
    summary: Ref,
    endedAt: Ref,
    at: Schema.Number
  }),
  { description: "A Vapi call ended: the end-of-call report, the source of truth for the call's outcome." }
)

/** Subject token of an inbound Vapi event. */
export const eventToken = (m: ServerMessage): string => m.type

/** Every inbound Vapi message. */
export const all: ReadonlyArray<Message.MessageType> = [CallStatusChanged, CallEnded]
