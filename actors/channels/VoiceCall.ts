/**
 * What a contact knows about its current call, and how webhook events change it. Vapi
 * sends no event id, may send a message twice and out of order: events are matched to the
 * call by its idempotency key (call metadata) or call id, a status never moves backwards,
 * a `status-update: ended` does not end anything, and the first end-of-call report is the
 * truth: it ends the call with its outcome; every later event for the call is ignored.
 */
import { Schema } from "effect"
import type { DeliveryOutcome } from "../../protocols/Campaign.js"

/** A contact's current call. */
export const CallState = Schema.Struct({
  /** The delivery's idempotency key (also in the call's metadata). */
  key: Schema.String,
  callId: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  ended: Schema.Boolean
})
export type CallState = typeof CallState.Type

/** A webhook event, as the contact receives it. */
export type CallEvent =
  | { readonly _tag: "status"; readonly callId: string; readonly idempotencyKey: string | null; readonly status: string }
  | {
      readonly _tag: "ended"
      readonly callId: string
      readonly idempotencyKey: string | null
      readonly endedReason: string
      readonly durationSec: number | null
      readonly transcript: string | null
      readonly summary: string | null
    }

/** The outcome of an ended call. */
export interface CallOutcome {
  readonly outcome: DeliveryOutcome
  readonly detail: string
  readonly durationSec: number
  readonly transcript: string | null
}

/** A call that was just placed (or is about to be). */
export const placed = (key: string, callId: string | null): CallState => ({ key, callId, status: callId ? "queued" : null, ended: false })

/** Whether an event belongs to this call. */
export const matches = (call: CallState, e: CallEvent): boolean =>
  (e.idempotencyKey !== null && e.idempotencyKey === call.key) || (call.callId !== null && e.callId === call.callId)

const order = ["scheduled", "queued", "ringing", "in-progress", "forwarding", "ended"]
const rank = (s: string | null) => (s === null ? -1 : order.indexOf(s))

/** The outcome an end-of-call report states (Vapi `endedReason`, duration, transcript). */
export const outcomeOf = (e: Extract<CallEvent, { _tag: "ended" }>): CallOutcome => {
  const reason = e.endedReason.toLowerCase()
  const duration = e.durationSec ?? 0
  const outcome: DeliveryOutcome = reason.includes("voicemail")
    ? "voicemail"
    : /did-not-answer|no-answer|busy|not-answered/.test(reason)
      ? "no-answer"
      : /ended-call|end-call-phrase|max-duration|silence-timed-out|hangup/.test(reason) && (duration > 0 || e.transcript)
        ? "answered"
        : /error|failed|invalid|fault/.test(reason)
          ? "failed"
          : duration > 0
            ? "answered"
            : "no-answer"
  const transcript = e.transcript ?? null
  return { outcome, detail: `call ${e.callId} ended: ${e.endedReason}${e.summary ? ` — ${e.summary}` : ""}`, durationSec: duration, transcript }
}

/**
 * Applies an event to the call: the new state, and the outcome when this event ended it
 * (only the first end-of-call report does). Events of other calls change nothing.
 */
export const apply = (call: CallState, e: CallEvent): { readonly call: CallState; readonly ended: CallOutcome | null } => {
  if (!matches(call, e) || call.ended) return { call, ended: null }
  const callId = call.callId ?? e.callId
  if (e._tag === "status") {
    const status = rank(e.status) > rank(call.status) && e.status !== "ended" ? e.status : call.status
    return { call: { ...call, callId, status }, ended: null }
  }
  return { call: { ...call, callId, status: "ended", ended: true }, ended: outcomeOf(e) }
}
