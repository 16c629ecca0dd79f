/**
 * The dead-letter record: what was refused or failed, why (a typed reason), and the
 * original bytes and headers, so nothing is lost and the message can be retried.
 */
import { Option, Schema } from "effect"
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

/**
 * The message a dead-letter record keeps, when it is one of type `def` and still decodes:
 * its payload and its envelope's timestamp. Anything else (another type, bytes that were
 * never a valid message) is none.
 */
export const originalOf = <A, I>(record: unknown, def: Message.MessageType<A, I>): Option.Option<{ readonly payload: A; readonly ts: number }> => {
  const r = record as Partial<DeadLetterRecord> | null
  if (r?.originalType !== def.type || typeof r.dataBase64 !== "string") return Option.none()
  try {
    const envelope = JSON.parse(Buffer.from(r.dataBase64, "base64").toString("utf8")) as { readonly ts?: unknown; readonly payload?: unknown }
    return Option.map(Schema.decodeUnknownOption(def.payload)(envelope.payload), (payload) => ({
      payload,
      ts: typeof envelope.ts === "number" ? envelope.ts : (r.at ?? 0)
    }))
  } catch {
    return Option.none()
  }
}
