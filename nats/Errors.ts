/**
 * Errors of the NATS adapter. Foreign errors from nats.js are converted here, at the edge,
 * with `retryable` saying whether trying again can help.
 */
import { JetStreamApiError } from "@nats-io/jetstream"
import { Data } from "effect"
import { PublishRejected } from "./AckedPublisher.js"

/** The connection could not be made or was lost. */
export class NatsConnectError extends Data.TaggedError("NatsConnectError")<{
  readonly servers: ReadonlyArray<string>
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retryable = true
}

/** A JetStream or KV request failed. */
export class NatsRequestError extends Data.TaggedError("NatsRequestError")<{
  readonly operation: string
  readonly message: string
  readonly code?: number | undefined
  readonly cause?: unknown
}> {
  get retryable(): boolean {
    // 10071: wrong last sequence (a CAS conflict); 10077: duplicate-blocked; these are answers, not faults.
    return this.code !== 10071 && this.code !== 10077 && this.code !== 10058
  }
}

/** Provisioning of streams, consumers or buckets failed. */
export class ProvisionError extends Data.TaggedError("ProvisionError")<{
  readonly resource: string
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retryable = false
}

/** Reads the JetStream API error code (e.g. 10071) from a nats.js error, if any. */
export const apiCode = (e: unknown): number | undefined => {
  if (e instanceof JetStreamApiError) return e.code
  if (e instanceof PublishRejected) return e.code
  const cause = (e as { cause?: unknown })?.cause
  return cause instanceof JetStreamApiError ? cause.code : undefined
}

/** Wraps a foreign error from a request. */
export const request = (operation: string) => (cause: unknown) =>
  new NatsRequestError({
    operation,
    message: cause instanceof Error ? cause.message : String(cause),
    code: apiCode(cause),
    cause
  })
