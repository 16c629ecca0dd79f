/**
 * Errors of the LLM service. Foreign errors (the OpenAI and Anthropic SDKs' `APIError`
 * family, timeouts, schema decode failures) are converted here, at the adapter edge, into
 * one `LlmError` whose `reason` says what happened and whose `retryable` tells our retry
 * policy and the circuit breaker what to do. `retryAfterMs` carries the provider's
 * `retry-after` advice on rate limits.
 */
import { Data } from "effect"

/** Why a model call failed. */
export type LlmErrorReason =
  /** 429: the provider's rate limit (retryable, after `retryAfterMs` when given). */
  | "RateLimited"
  /** No answer in time (ours or the SDK's timeout; retryable). */
  | "Timeout"
  /** The provider could not be reached, or answered 5xx (retryable). */
  | "Unavailable"
  /** Anthropic 529 / overloaded (retryable). */
  | "Overloaded"
  /** 400/404/422: the request itself is wrong; retrying it cannot help. */
  | "BadRequest"
  /** 401/403: credentials; retrying cannot help. */
  | "Auth"
  /** The answer did not match the output schema. */
  | "Decode"
  /** The model refused or stopped before finishing (content filter, max tokens). */
  | "Incomplete"
  /** Every candidate model's circuit is open (or failed) and no fallback was left. */
  | "NoModel"
  /** No candidate model's worst-case cost fits what the call may spend (its budget). */
  | "OverBudget"
  /** Anything else. */
  | "Unknown"

const retryableReasons: ReadonlySet<LlmErrorReason> = new Set(["RateLimited", "Timeout", "Unavailable", "Overloaded"])

/** A failed model call. */
export class LlmError extends Data.TaggedError("LlmError")<{
  readonly provider: string
  readonly model: string
  readonly reason: LlmErrorReason
  readonly retryable: boolean
  readonly message: string
  readonly status?: number
  readonly retryAfterMs?: number
  readonly cause?: unknown
}> {}

/** Makes an `LlmError`, deriving `retryable` from the reason. */
export const make = (
  provider: string,
  model: string,
  reason: LlmErrorReason,
  message: string,
  extra: { readonly status?: number; readonly retryAfterMs?: number; readonly cause?: unknown } = {}
): LlmError => new LlmError({ provider, model, reason, retryable: retryableReasons.has(reason), message, ...extra })

const header = (headers: unknown, name: string): string | null => {
  if (headers && typeof (headers as Headers).get === "function") return (headers as Headers).get(name)
  if (headers && typeof headers === "object") {
    const v = (headers as Record<string, unknown>)[name]
    return typeof v === "string" ? v : null
  }
  return null
}

/** The provider's retry advice: `retry-after-ms`, else `retry-after` (seconds or an HTTP date). */
export const retryAfterMs = (headers: unknown, now = Date.now()): number | undefined => {
  const ms = header(headers, "retry-after-ms")
  if (ms !== null && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const after = header(headers, "retry-after")
  if (after === null) return undefined
  if (Number.isFinite(Number(after))) return Math.max(0, Number(after) * 1000)
  const at = Date.parse(after)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

/**
 * Converts an SDK error (OpenAI or Anthropic: both expose `status`, `headers` and the same
 * class names) into an `LlmError`.
 */
export const fromSdk = (provider: string, model: string) => (cause: unknown): LlmError => {
  if (cause instanceof LlmError) return cause
  const e = cause as { name?: string; status?: number; headers?: unknown; message?: string; constructor?: { name?: string } }
  const name = e?.constructor?.name ?? e?.name ?? ""
  const message = `${provider}:${model}: ${e?.message ?? String(cause)}`
  if (name === "APIConnectionTimeoutError" || name === "APIUserAbortError") return make(provider, model, "Timeout", message, { cause })
  if (name === "APIConnectionError") return make(provider, model, "Unavailable", message, { cause })
  const status = typeof e?.status === "number" ? e.status : undefined
  if (status === undefined) return make(provider, model, "Unknown", message, { cause })
  const extra = { status, cause, retryAfterMs: retryAfterMs(e.headers) }
  if (status === 429) return make(provider, model, "RateLimited", message, extra)
  if (status === 529) return make(provider, model, "Overloaded", message, extra)
  if (status === 408) return make(provider, model, "Timeout", message, extra)
  if (status >= 500) return make(provider, model, "Unavailable", message, extra)
  if (status === 401 || status === 403) return make(provider, model, "Auth", message, extra)
  return make(provider, model, "BadRequest", message, extra)
}
