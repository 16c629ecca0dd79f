/**
 * A contact's engagement in one campaign, as a state machine the contact actor runs:
 * guardrails at dispatch (opt-out, do-not-contact, consent, quiet hours in the contact's
 * zone), draft → deliver → analyse per touch, deferral and wake-up through the scheduler
 * (quiet hours, throttles, capacity, the gap before the next touch), calls whose outcome
 * comes by webhook, and inbound signals (reply, meeting booked, opt-out) that stop the
 * sequence. The contact lock is taken and given back through `Lock`, the actor's policy.
 */
import { Effect, Schema } from "effect"
import { Address, Campaign, Dispatch } from "../../protocols/index.js"
import type { Actor, Locks } from "../../runtime/index.js"
import { addressOf as campaignAddress, topicOf } from "../CampaignActor.js"
import * as VoiceCall from "../channels/VoiceCall.js"
import * as DispatchPolicy from "../guardrails/DispatchPolicy.js"

/** The step a contact is at within its active engagement. */
export const Phase = Schema.Literal("drafting", "delivering", "calling", "analysing", "deferred", "waiting")

/** An engagement in progress. Fields added after the first version decode with defaults. */
export const Active = Schema.Struct({
  campaignId: Schema.String,
  contact: Campaign.ContactSnapshot,
  channel: Campaign.Channel,
  brief: Campaign.Brief,
  phase: Phase,
  outcome: Schema.NullOr(Campaign.DeliveryOutcome),
  sequence: Schema.optionalWith(Schema.Array(Campaign.Channel), { default: () => [] }),
  touch: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  maxTouches: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  gapMs: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  draft: Schema.optionalWith(Schema.NullOr(Schema.Struct({ subject: Schema.NullOr(Schema.String), body: Schema.String })), { default: () => null }),
  wake: Schema.optionalWith(
    Schema.NullOr(Schema.Struct({ token: Schema.String, until: Schema.Number, resume: Schema.Literal("touch", "deliver"), reason: Schema.String })),
    { default: () => null }
  ),
  call: Schema.optionalWith(Schema.NullOr(VoiceCall.CallState), { default: () => null }),
  /** An inbound signal that ends the sequence after the current step. */
  stop: Schema.optionalWith(Schema.NullOr(Dispatch.InboundKind), { default: () => null }),
  locked: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type Active = typeof Active.Type

/** Persisted state of a contact actor. */
export const State = Schema.Struct({
  active: Schema.NullOr(Active),
  /** Campaigns this contact finished, most recent last (bounded). */
  history: Schema.Array(Schema.Struct({ campaignId: Schema.String, status: Campaign.ContactStatus, at: Schema.Number })),
  /** The contact opted out (inbound STOP, unsubscribe): no campaign contacts it again. */
  optedOut: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type State = typeof State.Type

/** How the actor takes and gives back the contact lock. */
export interface Lock {
  readonly acquire: (campaignId: string) => Effect.Effect<Locks.Acquired, unknown>
  readonly release: (campaignId: string) => Effect.Effect<boolean, unknown>
}

const HISTORY = 20

/** Reports a terminal status to the campaign and the dashboard; clears the engagement. */
export const finish = (
  state: State,
  ctx: Actor.ActorContext,
  campaignId: string,
  status: Campaign.ContactStatus,
  reason: string | null,
  channel: Campaign.Channel | null,
  outcome: Campaign.DeliveryOutcome | null = null,
  touches = 0
): State => {
  const contactId = ctx.id as Campaign.ContactSnapshot["id"]
  const cid = campaignId as Campaign.ContactSnapshot["id"] & never
  ctx.send(campaignAddress(campaignId), Campaign.ContactCompleted, { campaignId: cid, contactId, status, reason, channel, outcome, touches })
  ctx.send(topicOf(campaignId), Campaign.ContactProgress, { campaignId: cid, contactId, phase: "completed", channel, status, reason })
  return {
    ...state,
    active: state.active?.campaignId === campaignId ? null : state.active,
    history: [...state.history, { campaignId, status, at: ctx.envelope.ts }].slice(-HISTORY)
  }
}

/** A progress event of the active engagement. */
export const progress = (ctx: Actor.ActorContext, campaignId: string, phase: "engaged" | "drafted" | "delivered" | "analysed", channel: Campaign.Channel) =>
  ctx.send(topicOf(campaignId), Campaign.ContactProgress, {
    campaignId: campaignId as never,
    contactId: ctx.id as never,
    phase,
    channel,
    status: null,
    reason: null
  })

const reachedBy = (o: Campaign.DeliveryOutcome | null) => o === "answered" || o === "voicemail" || o === "sent"

/** The terminal status of an engagement stopped early (by a signal, a guardrail or the lock). */
const stoppedStatus = (a: Active, kind: string): Campaign.ContactStatus =>
  kind === "meeting-booked" ? "converted" : kind === "reply" || reachedBy(a.outcome) ? "reached" : a.touch > 1 ? "failed" : "skipped"

/** The finish reason of an inbound signal (`unsubscribed`: opted out during the campaign). */
export const reasonOf = (kind: Dispatch.InboundKind) => (kind === "reply" ? "replied" : kind === "opt-out" ? "unsubscribed" : "meeting-booked")

/** Ends the engagement early with `reason`, giving the lock back. */
export const stop = (state: State, ctx: Actor.ActorContext, lock: Lock, a: Active, kind: string, reason: string) =>
  Effect.gen(function* () {
    if (a.locked) yield* lock.release(a.campaignId).pipe(Effect.ignore)
    return finish(state, ctx, a.campaignId, stoppedStatus(a, kind), reason, a.touch > 1 || a.outcome !== null ? a.channel : null, a.outcome, a.touch - (a.outcome === null ? 1 : 0))
  })

/** Asks the scheduler to wake the engagement at `until` and says so on the dashboard. */
export const defer = (state: State, ctx: Actor.ActorContext, a: Active, until: number, reason: string, resume: "touch" | "deliver"): State => {
  const token = `${a.campaignId}/${a.touch}/${resume}/${until}`
  const campaignId = a.campaignId as never
  ctx.send(Address.agent("scheduler"), Dispatch.DeferRequested, { campaignId, contactId: ctx.id as never, wakeAt: until, reason, token })
  ctx.send(topicOf(a.campaignId), Dispatch.ContactDeferred, { campaignId, contactId: ctx.id as never, until, reason })
  return { ...state, active: { ...a, phase: resume === "touch" && a.outcome !== null ? "waiting" : "deferred", wake: { token, until, resume, reason } } }
}

/** Runs the guardrails for the current touch and, if clear, takes the lock and asks for a draft. */
export const startTouch = (state: State, ctx: Actor.ActorContext, lock: Lock, settings: DispatchPolicy.PolicySettings, a: Active) =>
  Effect.gen(function* () {
    const verdict = DispatchPolicy.check(settings, a.contact, state.optedOut, [a.channel], ctx.envelope.ts)
    if (verdict._tag === "Skip") return yield* stop(state, ctx, lock, a, "guardrail", verdict.reason)
    if (verdict._tag === "Defer") {
      if (a.locked) yield* lock.release(a.campaignId).pipe(Effect.ignore)
      return defer(state, ctx, { ...a, locked: false }, verdict.until, verdict.reason, "touch")
    }
    if (!a.locked) {
      const got = yield* lock.acquire(a.campaignId)
      if (got._tag === "Held") return yield* stop(state, ctx, lock, { ...a, locked: false }, "lock", `locked-by:${got.holder}`)
    }
    ctx.send(Address.agent("content"), Campaign.DraftRequested, { campaignId: a.campaignId as never, contact: a.contact, channel: a.channel, brief: a.brief })
    progress(ctx, a.campaignId, "engaged", a.channel)
    return { ...state, active: { ...a, phase: "drafting" as const, locked: true, wake: null, draft: null, call: null } }
  })

/** The delivery's idempotency key: one per tenant, campaign, contact, touch and channel. */
export const deliveryKey = (ctx: Actor.ActorContext, a: Active) => `${ctx.tenant}/${a.campaignId}/${a.contact.id}/${a.touch}/${a.channel}`

/** Asks the executor to deliver the kept draft. */
export const deliver = (state: State, ctx: Actor.ActorContext, a: Active): State => {
  const draft = a.draft!
  const key = deliveryKey(ctx, a)
  ctx.send(Address.agent("executor"), Campaign.DeliverRequested, {
    campaignId: a.campaignId as never,
    contactId: a.contact.id,
    channel: a.channel,
    to: a.channel === "email" ? a.contact.email! : a.contact.phone!,
    subject: draft.subject,
    body: draft.body,
    idempotencyKey: key,
    leadScore: a.contact.leadScore
  })
  return { ...state, active: { ...a, phase: "delivering", wake: null, call: a.channel === "voice" ? (a.call ?? VoiceCall.placed(key, null)) : null } }
}

/** The delivery's outcome is known: ask the analyzer. */
export const outcomeKnown = (state: State, ctx: Actor.ActorContext, a: Active, outcome: Campaign.DeliveryOutcome, transcript: string | null): State => {
  ctx.send(Address.agent("analyzer"), Campaign.AnalyseRequested, {
    campaignId: a.campaignId as never,
    contactId: a.contact.id,
    channel: a.channel,
    outcome,
    transcript,
    leadScore: a.contact.leadScore
  })
  progress(ctx, a.campaignId, "delivered", a.channel)
  return { ...state, active: { ...a, phase: "analysing", outcome } }
}

/** After an analysis: finish, or schedule the next touch of the sequence. */
export const afterAnalysis = (state: State, ctx: Actor.ActorContext, lock: Lock, a: Active, leadStatus: string) =>
  Effect.gen(function* () {
    progress(ctx, a.campaignId, "analysed", a.channel)
    yield* lock.release(a.campaignId)
    const done = { ...a, locked: false }
    if (a.stop !== null) return finish(state, ctx, a.campaignId, stoppedStatus(a, a.stop), reasonOf(a.stop), a.channel, a.outcome, a.touch)
    const reached = reachedBy(a.outcome)
    const next = DispatchPolicy.consentedChannel(a.contact, a.sequence, a.sequence.indexOf(a.channel) + 1)
    const more = a.touch < a.maxTouches && next !== null && a.outcome !== "answered" && leadStatus !== "converted" && leadStatus !== "unqualified"
    if (more) {
      return defer(state, ctx, { ...done, channel: next, touch: a.touch + 1, draft: null, call: null }, ctx.envelope.ts + a.gapMs, "next-touch", "touch")
    }
    const status: Campaign.ContactStatus = leadStatus === "converted" ? "converted" : reached ? "reached" : "failed"
    return finish(state, ctx, a.campaignId, status, reached ? null : `not-reached:${a.outcome}`, a.channel, a.outcome, a.touch)
  })

/** An inbound signal: opt-out is remembered for good; any signal ends the sequence. */
export const inbound = (state: State, ctx: Actor.ActorContext, lock: Lock, signal: typeof Dispatch.ContactInbound.payload.Type) =>
  Effect.gen(function* () {
    const s: State = signal.kind === "opt-out" ? { ...state, optedOut: true } : state
    const a = s.active
    if (a === null || (signal.campaignId !== null && signal.campaignId !== a.campaignId)) return s
    if (a.phase === "waiting" || a.phase === "deferred") return yield* stop(s, ctx, lock, a, signal.kind, reasonOf(signal.kind))
    return { ...s, active: { ...a, stop: a.stop ?? signal.kind } }
  })
