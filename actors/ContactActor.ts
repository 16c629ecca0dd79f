/**
 * The contact actor (one per contact, across campaigns). For an engagement it runs the
 * dispatch guardrails (opt-out, do-not-contact, consent, quiet hours in the contact's own
 * time zone), takes the contact lock (one holder across all nodes and campaigns), then
 * walks each touch through content → executor → analyzer over NATS; deferred steps wait
 * for the scheduler's wake-up, calls for their end-of-call report, and a reply, booked
 * meeting or opt-out stops the sequence. It releases the lock and reports the terminal
 * status to its campaign. Every step is a progress event. When idle it holds nothing and
 * is passivated. The engagement's state machine lives in `contact/Engagement.ts`.
 */
import { Effect } from "effect"
import { Campaign, Dispatch, Message, Vapi } from "../protocols/index.js"
import { Actor, Locks } from "../runtime/index.js"
import * as VoiceCall from "./channels/VoiceCall.js"
import * as Engagement from "./contact/Engagement.js"
import * as DispatchPolicy from "./guardrails/DispatchPolicy.js"

/** Persisted state of a contact actor. */
export const State = Engagement.State
export type State = Engagement.State

/** The lock key of a contact. */
export const lockKey = (tenant: string, contactId: string) => `contact.${tenant}.${contactId}`
/** The lock holder name of a campaign. */
export const holderOf = (campaignId: string) => `campaign:${campaignId}`

/** The first channel of the sequence the contact can be reached on, with consent. */
export const pickChannel = (contact: Campaign.ContactSnapshot, sequence: ReadonlyArray<Campaign.Channel>): Campaign.Channel | null =>
  DispatchPolicy.consentedChannel(contact, sequence)

/** The contact lock policy: acquire by `create`, re-entrant for the same campaign; a conflict skips. */
const lockOf = (ctx: Actor.ActorContext, locks: Locks.LocksService): Engagement.Lock => ({
  acquire: (campaignId) => locks.acquire(lockKey(ctx.tenant, ctx.id), holderOf(campaignId)),
  release: (campaignId) => locks.release(lockKey(ctx.tenant, ctx.id), holderOf(campaignId))
})

const callEvent = (m: Message.Decoded): VoiceCall.CallEvent | null => {
  if (Message.is(Vapi.CallEnded)(m)) {
    const p = m.payload
    return { _tag: "ended", callId: p.callId, idempotencyKey: p.idempotencyKey, endedReason: p.endedReason, durationSec: p.durationSec, transcript: p.transcript, summary: p.summary }
  }
  if (Message.is(Vapi.CallStatusChanged)(m)) {
    return { _tag: "status", callId: m.payload.callId, idempotencyKey: m.payload.idempotencyKey, status: m.payload.status }
  }
  return null
}

/** The contact actor definition. */
export const ContactActor = Actor.make({
  type: "contact",
  accepts: [
    Campaign.EngageContact,
    Campaign.Drafted,
    Campaign.Delivered,
    Campaign.Analysed,
    Dispatch.DeliveryPending,
    Dispatch.DeliveryDeferred,
    Dispatch.StepDue,
    Dispatch.ContactInbound,
    Vapi.CallEnded,
    Vapi.CallStatusChanged
  ],
  state: State,
  initial: (): State => ({ active: null, history: [], optedOut: false }),
  isIdle: (s) => s.active === null,
  handle: Effect.fn("ContactActor.handle")(function* (state: State, m: Message.Decoded, ctx: Actor.ActorContext) {
    const lock = lockOf(ctx, yield* Locks.Locks)
    const settings = yield* Effect.flatMap(DispatchPolicy.DispatchPolicy, (p) => p.settings)
    if (Message.is(Campaign.EngageContact)(m)) {
      const { campaignId, contact, channels, brief, sequence } = m.payload
      // a repeated engage for the same campaign changes nothing
      if (state.active?.campaignId === campaignId || state.history.some((h) => h.campaignId === campaignId)) return state
      if (state.active !== null) return Engagement.finish(state, ctx, campaignId, "skipped", `busy:${state.active.campaignId}`, null)
      const verdict = DispatchPolicy.check(settings, contact, state.optedOut, channels, ctx.envelope.ts)
      if (verdict._tag === "Skip") return Engagement.finish(state, ctx, campaignId, "skipped", verdict.reason, null)
      const active: Engagement.Active = {
        campaignId,
        contact,
        channel: verdict.channel,
        brief,
        phase: "deferred",
        outcome: null,
        sequence: channels,
        touch: 1,
        maxTouches: sequence?.maxTouches ?? 1,
        gapMs: sequence?.gapMs ?? 0,
        draft: null,
        wake: null,
        call: null,
        stop: null,
        locked: false
      }
      return yield* Engagement.startTouch(state, ctx, lock, settings, active)
    }
    if (Message.is(Dispatch.ContactInbound)(m)) return yield* Engagement.inbound(state, ctx, lock, m.payload)
    const a = state.active
    const campaignOf = (m.payload as { campaignId?: string | null }).campaignId
    if (a === null || (campaignOf != null && campaignOf !== a.campaignId)) return state
    if (Message.is(Campaign.Drafted)(m)) {
      if (a.phase !== "drafting") return state
      if (a.stop !== null) return yield* Engagement.stop(state, ctx, lock, a, a.stop, Engagement.reasonOf(a.stop))
      const filter = m.payload.filter
      if (filter?.verdict === "blocked") return yield* Engagement.stop(state, ctx, lock, a, "content", `content-blocked:${filter.reasons.join(",")}`)
      Engagement.progress(ctx, a.campaignId, "drafted", a.channel)
      return Engagement.deliver(state, ctx, { ...a, draft: { subject: m.payload.subject, body: m.payload.body } })
    }
    if (Message.is(Campaign.Delivered)(m)) {
      if (a.phase !== "delivering" || m.payload.idempotencyKey !== Engagement.deliveryKey(ctx, a)) return state
      return Engagement.outcomeKnown(state, ctx, a, m.payload.outcome, m.payload.transcript)
    }
    if (Message.is(Dispatch.DeliveryPending)(m)) {
      if (a.phase !== "delivering" || m.payload.idempotencyKey !== Engagement.deliveryKey(ctx, a)) return state
      const call = a.call ?? VoiceCall.placed(m.payload.idempotencyKey, null)
      return { ...state, active: { ...a, phase: "calling" as const, call: { ...call, callId: call.callId ?? m.payload.providerRef } } }
    }
    if (Message.is(Dispatch.DeliveryDeferred)(m)) {
      if (a.phase !== "delivering" || m.payload.idempotencyKey !== Engagement.deliveryKey(ctx, a)) return state
      yield* lock.release(a.campaignId).pipe(Effect.ignore)
      return Engagement.defer(state, ctx, { ...a, locked: false }, m.payload.retryAt, m.payload.reason, "deliver")
    }
    if (Message.is(Dispatch.StepDue)(m)) {
      if (a.wake === null || a.wake.token !== m.payload.token) return state
      if (a.wake.resume === "touch") return yield* Engagement.startTouch(state, ctx, lock, settings, { ...a, wake: null })
      const verdict = DispatchPolicy.check(settings, a.contact, state.optedOut, [a.channel], ctx.envelope.ts)
      if (verdict._tag === "Skip") return yield* Engagement.stop(state, ctx, lock, a, "guardrail", verdict.reason)
      if (verdict._tag === "Defer") return Engagement.defer(state, ctx, a, verdict.until, verdict.reason, "deliver")
      const got = yield* lock.acquire(a.campaignId)
      if (got._tag === "Held") return yield* Engagement.stop(state, ctx, lock, a, "lock", `locked-by:${got.holder}`)
      return Engagement.deliver(state, ctx, { ...a, locked: true })
    }
    const event = callEvent(m)
    if (event !== null) {
      if (a.call === null || (a.phase !== "delivering" && a.phase !== "calling")) return state
      const next = VoiceCall.apply(a.call, event)
      const updated = { ...a, call: next.call }
      return next.ended === null
        ? { ...state, active: updated }
        : Engagement.outcomeKnown(state, ctx, updated, next.ended.outcome, next.ended.transcript)
    }
    if (Message.is(Campaign.Analysed)(m)) {
      if (a.phase !== "analysing") return state
      return yield* Engagement.afterAnalysis(state, ctx, lock, a, m.payload.leadStatus)
    }
    return state
  }),
  // a step failed past its retries (here or in an agent): free the contact, tell the campaign
  onDeadLetter: (state: State, _m: Message.Decoded, error: unknown, ctx: Actor.ActorContext) =>
    Effect.gen(function* () {
      const a = state.active
      if (a === null) return state
      yield* lockOf(ctx, yield* Locks.Locks).release(a.campaignId).pipe(Effect.ignore)
      const tag = error as { reason?: string; error?: { _tag?: string } }
      const reason = `error:${tag.error?._tag ?? tag.reason ?? (error as { _tag?: string })._tag ?? "unknown"}`
      return Engagement.finish(state, ctx, a.campaignId, "failed", reason, a.channel, a.outcome, a.touch)
    })
})
