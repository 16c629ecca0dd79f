/**
 * The webhook handling of a call, as a contact sees it: events are matched by the call's
 * idempotency key or id; duplicates and events out of order never move a call backwards
 * or end it twice; a `status-update: ended` does not end it, the first end-of-call report
 * does, with the outcome it states; events of other calls change nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import * as VoiceCall from "../../../actors/channels/VoiceCall.js"

const key = "t/c/ct-1/1/voice"
const status = (s: string, callId = "call-1", k: string | null = key): VoiceCall.CallEvent => ({ _tag: "status", callId, idempotencyKey: k, status: s })
const ended = (reason: string, extra: Partial<Extract<VoiceCall.CallEvent, { _tag: "ended" }>> = {}): VoiceCall.CallEvent => ({
  _tag: "ended",
  callId: "call-1",
  idempotencyKey: key,
  endedReason: reason,
  durationSec: 95,
  transcript: "AI: Hi... User: tell me about pricing",
  summary: "asked for pricing",
  ...extra
})

const run = (events: ReadonlyArray<VoiceCall.CallEvent>, start = VoiceCall.placed(key, null)) => {
  let call = start
  const outcomes: Array<VoiceCall.CallOutcome> = []
  for (const e of events) {
    const r = VoiceCall.apply(call, e)
    call = r.call
    if (r.ended) outcomes.push(r.ended)
  }
  return { call, outcomes }
}

describe("VoiceCall", () => {
  it("in order: ringing, in progress, ended, report", () => {
    const r = run([status("ringing"), status("in-progress"), status("ended"), ended("customer-ended-call")])
    expect(r.outcomes).toEqual([{ outcome: "answered", detail: "call call-1 ended: customer-ended-call — asked for pricing", durationSec: 95, transcript: "AI: Hi... User: tell me about pricing" }])
    expect(r.call).toMatchObject({ callId: "call-1", status: "ended", ended: true })
  })

  it("duplicated reports end the call once; later events change nothing", () => {
    const r = run([ended("customer-ended-call"), ended("customer-ended-call"), status("in-progress"), ended("voicemail")])
    expect(r.outcomes).toHaveLength(1)
    expect(r.outcomes[0]!.outcome).toBe("answered")
  })

  it("out of order: the report first, the statuses after, even before the call id is known", () => {
    const r = run([ended("voicemail", { durationSec: 21, transcript: null }), status("ringing"), status("queued")])
    expect(r.outcomes.map((o) => o.outcome)).toEqual(["voicemail"])
    expect(r.call.callId).toBe("call-1")
  })

  it("statuses never move backwards, and `ended` status is not the truth", () => {
    const r = run([status("in-progress"), status("ringing"), status("queued"), status("ended")])
    expect(r.call.status).toBe("in-progress")
    expect(r.call.ended).toBe(false)
    expect(r.outcomes).toHaveLength(0)
  })

  it("matches by call id when the metadata is missing; ignores other calls", () => {
    const placed = VoiceCall.placed(key, "call-1")
    expect(run([ended("customer-busy", { idempotencyKey: null, durationSec: 0 })], placed).outcomes[0]!.outcome).toBe("no-answer")
    expect(run([ended("customer-ended-call", { callId: "call-2", idempotencyKey: "other" })], placed).outcomes).toHaveLength(0)
  })

  it("maps ended reasons to outcomes", () => {
    const o = (reason: string, durationSec: number | null, transcript: string | null = null) =>
      VoiceCall.outcomeOf({ _tag: "ended", callId: "c", idempotencyKey: null, endedReason: reason, durationSec, transcript, summary: null }).outcome
    expect(o("assistant-ended-call", 120, "...")).toBe("answered")
    expect(o("voicemail", 20)).toBe("voicemail")
    expect(o("customer-did-not-answer", 0)).toBe("no-answer")
    expect(o("customer-busy", 0)).toBe("no-answer")
    expect(o("pipeline-error-openai-llm-failed", 0)).toBe("failed")
  })
})
