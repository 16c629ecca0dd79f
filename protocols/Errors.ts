/**
 * Why a message could not be accepted. These errors cross NATS inside dead-letter records,
 * so they are `Schema.TaggedError`s; `retryable` tells supervisors whether to try again.
 */
import { Schema } from "effect"

/** The bytes are not JSON (or not UTF-8). */
export class MalformedJson extends Schema.TaggedError<MalformedJson>()("MalformedJson", {
  message: Schema.String
}) {
  readonly retryable = false
}

/** The JSON is not a valid envelope (missing id, bad tenant, bad address…). */
export class InvalidEnvelope extends Schema.TaggedError<InvalidEnvelope>()("InvalidEnvelope", {
  message: Schema.String
}) {
  readonly retryable = false
}

/** No schema is registered for the envelope's `type`. */
export class UnknownMessageType extends Schema.TaggedError<UnknownMessageType>()("UnknownMessageType", {
  type: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The type is known but this version is not. */
export class UnsupportedVersion extends Schema.TaggedError<UnsupportedVersion>()("UnsupportedVersion", {
  type: Schema.String,
  version: Schema.Number,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The payload does not match the schema of its type. */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>()("InvalidPayload", {
  type: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The message is larger than the accepted limit. */
export class Oversized extends Schema.TaggedError<Oversized>()("Oversized", {
  size: Schema.Number,
  limit: Schema.Number,
  message: Schema.String
}) {
  readonly retryable = false
}

/** The subject's tenant and the envelope's tenant differ, or the sender may not send this. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {
  readonly retryable = false
}

/** The message reached a receiver that does not accept its type. */
export class UnexpectedMessage extends Schema.TaggedError<UnexpectedMessage>()("UnexpectedMessage", {
  type: Schema.String,
  receiver: Schema.String,
  message: Schema.String
}) {
  readonly retryable = false
}

/** Any reason a message can be refused at decode time. */
export type DecodeError =
  | MalformedJson
  | InvalidEnvelope
  | UnknownMessageType
  | UnsupportedVersion
  | InvalidPayload
  | Oversized
  | Unauthorized
  | UnexpectedMessage
