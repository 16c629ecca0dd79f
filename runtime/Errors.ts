/**
 * Errors of the runtime. `HandlerFailed` crosses NATS inside dead-letter records;
 * the others stay in-process. Retryability lives in the error: supervisors read
 * `retryable` instead of guessing.
 */
import { Data, Schema } from "effect"

/** A handler failed past its retry limit (recorded in the dead letter). */
export class HandlerFailed extends Schema.TaggedError<HandlerFailed>()("HandlerFailed", {
  receiver: Schema.String,
  messageType: Schema.String,
  attempts: Schema.Number,
  message: Schema.String
}) {
  readonly retryable = false
}

/**
 * A message was handed out as often as its consumer allows (`max_deliver`) and never acked:
 * nak'd while what it needed was unavailable, or on nodes that kept dying with it.
 */
export class DeliveriesExhausted extends Data.TaggedError("DeliveriesExhausted")<{
  readonly consumer: string
  readonly deliveries: number
  readonly message: string
}> {
  readonly retryable = false
}

/** The actor state in KV was written by someone else (stale revision: lost ownership). */
export class StateConflict extends Data.TaggedError("StateConflict")<{
  readonly key: string
  readonly expected: number
  readonly message: string
}> {
  readonly retryable = true
}

/** This node no longer holds the partition: it must not commit (the fence). */
export class Fenced extends Data.TaggedError("Fenced")<{
  readonly partition: number
  readonly message: string
}> {
  readonly retryable = false
}

/** Publishing to JetStream failed. */
export class PublishFailed extends Data.TaggedError("PublishFailed")<{
  readonly subject: string
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retryable = true
}

/** A KV operation of the runtime failed. */
export class KvFailed extends Data.TaggedError("KvFailed")<{
  readonly operation: string
  readonly key: string
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retryable = true
}

/** Whether an error (of any origin) says trying again cannot help. */
export const isRetryable = (e: unknown): boolean => {
  const r = (e as { retryable?: unknown } | null)?.retryable
  return r === undefined ? true : Boolean(r)
}

/** A readable one-line description of any error. */
export const describe = (e: unknown): string => {
  if (e instanceof Error) return e.message || e.name
  if (typeof e === "object" && e !== null) {
    const tag = (e as { _tag?: string })._tag
    const message = (e as { message?: string }).message
    if (tag || message) return [tag, message].filter(Boolean).join(": ")
    try {
      return JSON.stringify(e)
    } catch {
      return String(e)
    }
  }
  return String(e)
}

/** The `_tag` of an error, or `Error`. */
export const tagOf = (e: unknown): string =>
  (typeof e === "object" && e !== null && typeof (e as { _tag?: unknown })._tag === "string"
    ? (e as { _tag: string })._tag
    : e instanceof Error
      ? e.name
      : "Error")
