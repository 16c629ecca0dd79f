/**
 * Errors of the gateway. Foreign errors (node `http`, `ws`, nats.js) are converted here, at
 * the edge; `retryable` says whether trying again (restarting, resubscribing) can help.
 */
import { Data, Schema } from "effect"
import { apiCode } from "../nats/Errors.js"

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** The HTTP server could not listen on the configured address. */
export class GatewayListenError extends Data.TaggedError("GatewayListenError")<{
  readonly host: string
  readonly port: number
  readonly message: string
  readonly cause?: unknown
}> {
  /** A taken port may be freed later; a bad host will not be. */
  get retryable(): boolean {
    return (this.cause as { code?: string } | undefined)?.code === "EADDRINUSE"
  }
}

/** The ordered consumer behind a subscription could not be created or stopped delivering. */
export class SubscriptionError extends Data.TaggedError("SubscriptionError")<{
  readonly campaignId: string
  readonly message: string
  /** JetStream API error code, when the server answered with one (10059: stream not found). */
  readonly code?: number | undefined
  readonly cause?: unknown
}> {
  readonly retryable = true
}

/** A client kept more than the allowed bytes queued for longer than the allowed time. */
export class SlowClient extends Data.TaggedError("SlowClient")<{
  readonly bufferedBytes: number
  readonly limit: number
  readonly waitedMs: number
  readonly message: string
}> {
  readonly retryable = false
}

/** Why a client frame or request was refused: the `code` of a WebSocket `error` frame. */
export const ErrorCode = Schema.Literal(
  /** Not a JSON object with a string `op`, or a binary frame. */
  "bad_frame",
  /** Larger than `GatewayConfig.maxFrameBytes`. */
  "frame_too_large",
  /** `op` is not one the gateway knows. */
  "unknown_op",
  /** Known `op`, invalid fields (bad campaign id, `fromSeq` not a positive integer…). */
  "bad_request",
  /** The connection already holds `GatewayConfig.maxSubscriptions` subscriptions. */
  "too_many_subscriptions",
  /** `unsubscribe` for a campaign the connection is not subscribed to. */
  "not_subscribed",
  /** The event consumer could not be created or stopped; the subscription is gone. */
  "subscription_failed",
  /** More frames than `GatewayConfig.maxFramesPerSecond`; the frame was dropped. */
  "rate_limited"
)
export type ErrorCode = typeof ErrorCode.Type

/** A client frame was refused; `code` is the `error` frame's code sent back to the client. */
export class FrameRejected extends Data.TaggedError("FrameRejected")<{
  readonly code: ErrorCode
  readonly message: string
}> {
  readonly retryable = false
}

/** The socket closed (or is closing) while the gateway was writing to it. */
export class ClientGone extends Data.TaggedError("ClientGone")<{
  readonly message: string
}> {
  readonly retryable = false
}

/** Wraps a nats.js error raised while opening or reading a subscription's consumer. */
export const subscription = (campaignId: string, operation: string) => (cause: unknown) =>
  new SubscriptionError({
    campaignId,
    message: `${operation}: ${messageOf(cause)}`,
    code: apiCode(cause),
    cause
  })

/** Wraps a node `listen` error. */
export const listen = (host: string, port: number) => (cause: unknown) =>
  new GatewayListenError({ host, port, message: `cannot listen on ${host}:${port}: ${messageOf(cause)}`, cause })

/** A client could not be authenticated (no token, expired, forged, or auth not configured). */
export class AuthError extends Data.TaggedError("AuthError")<{
  readonly reason: "missing" | "expired" | "invalid" | "not_configured"
  readonly message: string
}> {
  readonly retryable = false
}

/** An authenticated client asked for something its tenant or role does not allow. */
export class Forbidden extends Data.TaggedError("Forbidden")<{
  readonly message: string
}> {
  readonly retryable = false
}
