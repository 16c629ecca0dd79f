/**
 * Errors of the channel adapters (Vapi, SMTP, SMS provider). Foreign errors (the Vapi SDK's
 * `VapiError`/`VapiTimeoutError`, nodemailer's SMTP errors, HTTP responses) are converted at
 * the adapter edge. Besides `retryable`, `sent` says whether the provider may have accepted
 * the message: `"no"` lets a retry send again, `"unknown"` makes the channel reconcile or
 * report the attempt as uncertain instead of risking a second contact.
 */
import { Data } from "effect"

/** Why a send failed. */
export type ChannelErrorReason = "RateLimited" | "Unavailable" | "Timeout" | "Rejected" | "Auth" | "NotConfigured" | "Unknown"

/** A failed send. */
export class ChannelError extends Data.TaggedError("ChannelError")<{
  readonly channel: string
  readonly reason: ChannelErrorReason
  readonly retryable: boolean
  /** Whether the provider may have taken the message. */
  readonly sent: "no" | "unknown"
  readonly message: string
  readonly status?: number
  readonly cause?: unknown
}> {}

const retryable: ReadonlySet<ChannelErrorReason> = new Set(["RateLimited", "Unavailable", "Timeout"])

/** Makes a `ChannelError`, deriving `retryable` from the reason. */
export const make = (
  channel: string,
  reason: ChannelErrorReason,
  sent: "no" | "unknown",
  message: string,
  extra: { readonly status?: number; readonly cause?: unknown } = {}
): ChannelError => new ChannelError({ channel, reason, retryable: retryable.has(reason), sent, message, ...extra })

/** Converts an HTTP status of a provider API into a reason and whether the request may have been taken. */
export const fromStatus = (channel: string, status: number, message: string, cause?: unknown): ChannelError => {
  if (status === 429) return make(channel, "RateLimited", "no", message, { status, cause })
  if (status === 401 || status === 403) return make(channel, "Auth", "no", message, { status, cause })
  if (status === 408 || status === 504) return make(channel, "Timeout", "unknown", message, { status, cause })
  if (status === 502 || status === 503) return make(channel, "Unavailable", "no", message, { status, cause })
  if (status >= 500) return make(channel, "Unavailable", "unknown", message, { status, cause })
  return make(channel, "Rejected", "no", message, { status, cause })
}
