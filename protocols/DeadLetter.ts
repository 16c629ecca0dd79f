/**
 * The dead-letter record: what was refused or failed, why (a typed reason), and the
 * original bytes and headers, so nothing is lost and the message can be retried.
 */
import { Schema } from "effect"
import * as Message from "./Message.js"

/** Why a message was dead-lettered: the tag of a `DecodeError` or `HandlerFailed`. */
export const DeadLetterReason = Schema.String
export type DeadLetterReason = typeof DeadLetterReason.Type

/** A dead-letter record, published on `<p>.<tenant>.dlq.<reason>`. */
export const DeadLettered = Message.define(
  "runtime.dead-lettered",
  Schema.Struct({
    reason: DeadLetterReason,
    error: Schema.Struct({ _tag: Schema.String, message: Schema.String }),
    receiver: Schema.String,
    subject: Schema.String,
    stream: Schema.NullOr(Schema.String),
    streamSeq: Schema.NullOr(Schema.Number),
    deliveries: Schema.Number,
    originalType: Schema.NullOr(Schema.String),
    originalId: Schema.NullOr(Schema.String),
    headers: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) }),
    dataBase64: Schema.String,
    at: Schema.Number
  }),
  { description: "A message that was refused or whose handler failed past its retry limit." }
)

/** A dead-letter record's payload. */
export type DeadLetterRecord = typeof DeadLettered.payload.Type
