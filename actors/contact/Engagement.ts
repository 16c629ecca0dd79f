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
import * as ChannelPrices from "../channels/ChannelPrices.js"
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
  locked: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** The campaign's contact-lock policy. */
  policy: Schema.optionalWith(Campaign.LockPolicy, { default: () => Campaign.defaultLockPolicy }),
  /** Since when this engagement waits for a lock another holder has (policy `wait`). */
  lockWaitSince: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  /** What the campaign reserved for this contact (null: no limit), and what it has spent. */
  allowance: Schema.optionalWith(Schema.NullOr(Campaign.Spend), { default: () => null }),
  spent: Schema.optionalWith(Campaign.Spend, { default: () => ({ actions: 0, usd: 0 }) }),
  /** When the campaign engaged the contact (its engage command's time), reported back when it finishes. */
  dispatchedAt: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null })
})
export type Active = typeof Active.Type

/** An engagement waiting for the contact to be free (policy `wait`, or a preemption that must wait). */
export const Waiting = Schema.Struct({
  engage: Campaign.EngageContact.payload,
  since: Schema.Number
})
export type Waiting = typeof Waiting.Type

/** Persisted state of a contact actor. */
export const State = Schema.Struct({
  active: Schema.NullOr(Active),
  /** Campaigns this contact finished, most recent last (bounded). */
  history: Schema.Array(
    Schema.Struct({
      campaignId: Schema.String,
      status: Campaign.ContactStatus,
      at: Schema.Number,
      /** The contact answered this campaign (a reply, a booked meeting): counted once. */
      replied: Schema.optionalWith(Schema.Boolean, { default: () => false })
    })
  ),
  /** The contact opted out (inbound STOP, unsubscribe): no campaign contacts it again. */
  optedOut: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Engagements of other campaigns waiting for this one to finish, in the order they start. */
  waiting: Schema.optionalWith(Schema.Array(Waiting), { default: () => [] })
})
export type State = typeof State.Type

/** How the actor takes and gives back the contact lock. */
export interface Lock {
  /** Takes the lock for the campaign; with policy `preempt`, from a holder of lower priority. */
  readonly acquire: (campaignId: string, policy: Campaign.LockPolicy) => Effect.Effect<Locks.Acquired, unknown>
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
  touches = 0,
  /** When the campaign engaged the contact, for a contact that finishes without an engagement (skipped at once). */
  engagedAt: number | null = null
): State => {
  const contactId = ctx.id as Campaign.ContactSnapshot["id"]
  const cid = campaignId as Campaign.ContactSnapshot["id"] & never
  const a = state.active?.campaignId === campaignId ? state.active : null
  const spend = a !== null ? { spent: a.spent } : {}
  const dispatchedAt = a?.dispatchedAt ?? engagedAt
  const sent = dispatchedAt !== null ? { dispatchedAt } : {}
  ctx.send(campaignAddress(campaignId), Campaign.ContactCompleted, { campaignId: cid, contactId, status, reason, channel, outcome, touches, ...spend, ...sent })
  ctx.send(topicOf(campaignId), Campaign.ContactProgress, { campaignId: cid, contactId, phase: "completed", channel, status, reason })
  return {
    ...state,
    active: state.active?.campaignId === campaignId ? null : state.active,
    history: [...state.history, { campaignId, status, at: ctx.envelope.ts, replied: answered(reason) }].slice(-HISTORY)
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

/** Whether a finish reason says the contact answered (the campaign counts it as `replied`). */
const answered = (reason: string | null) => reason === "replied" || reason === "meeting-booked"

/**
 * An answer (reply, booked meeting) to a campaign whose engagement already ended: the one
 * the signal names, else the last one that reached the contact. Its campaign counts it
 * as `replied`, once per campaign; an opt-out is no answer.
 */
const lateAnswer = (state: State, ctx: Actor.ActorContext, signal: typeof Dispatch.ContactInbound.payload.Type): State => {
  if (signal.kind === "opt-out") return state
  const i = state.history.findLastIndex((h) =>
    signal.campaignId !== null ? h.campaignId === signal.campaignId : h.status === "reached" || h.status === "converted"
  )
  const h = state.history[i]
  if (h === undefined || h.replied) return state
  ctx.send(campaignAddress(h.campaignId), Dispatch.ContactReplied, { campaignId: h.campaignId as never, contactId: ctx.id as never, kind: signal.kind, at: signal.at })
  return { ...state, history: state.history.map((x, j) => (j === i ? { ...x, replied: true } : x)) }
}

/** Ends the engagement early with `reason`, giving the lock back. */
export const stop = (state: State, ctx: Actor.ActorContext, lock: Lock, a: Active, kind: string, reason: string) =>
  Effect.gen(function* () {
    if (a.locked) yield* lock.release(a.campaignId).pipe(Effect.ignore)
    return finish({ ...state, active: a }, ctx, a.campaignId, stoppedStatus(a, kind), reason, a.touch > 1 || a.outcome !== null ? a.channel : null, a.outcome, a.touch - (a.outcome === null ? 1 : 0))
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
    const over = overBudget(a)
    if (over !== null) return yield* stop(state, ctx, lock, a, "budget", over)
    if (!a.locked) {
      const got = yield* lock.acquire(a.campaignId, a.policy)
      if (got._tag === "Held") return yield* lockConflict(state, ctx, lock, a, got.holder, "touch")
    }
    const draftCap = a.allowance === null ? {} : { maxCostUsd: Math.max(0, a.allowance.usd - a.spent.usd - ChannelPrices.reserveUsd(a.channel)) / 2 }
    ctx.send(Address.agent("content"), Campaign.DraftRequested, { campaignId: a.campaignId as never, contact: a.contact, channel: a.channel, brief: a.brief, ...draftCap })
    progress(ctx, a.campaignId, "engaged", a.channel)
    return { ...state, active: { ...a, phase: "drafting" as const, locked: true, lockWaitSince: null, wake: null, draft: null, call: null } }
  })

/**
 * Whether the next touch no longer fits the contact's allowance: one more action, and the
 * channel's worst case on top of what was spent. The reason names the budget.
 */
export const overBudget = (a: Active): string | null => {
  if (a.allowance === null) return null
  if (a.spent.actions + 1 > a.allowance.actions) return "budget:actions"
  if (a.spent.usd + ChannelPrices.reserveUsd(a.channel) > a.allowance.usd + 1e-9) return "budget:cost"
  return null
}

/** What a message's model calls cost, added to the engagement's spend. */
export const charge = (a: Active, usd: number, actions = 0): Active => ({
  ...a,
  spent: { actions: a.spent.actions + actions, usd: a.spent.usd + usd }
})

/** How often a waiting engagement asks for a lock another holder has. */
export const LOCK_RETRY_MS = 2_000

/**
 * The lock is held by someone else: policy `wait` retries durably (a scheduler wake-up)
 * until `maxWaitMs` has passed since the wait began; otherwise the engagement stops.
 */
export const lockConflict = (state: State, ctx: Actor.ActorContext, lock: Lock, a: Active, holder: string, resume: "touch" | "deliver") => {
  const since = a.lockWaitSince ?? ctx.envelope.ts
  if (a.policy.onConflict === "wait" && ctx.envelope.ts - since < a.policy.maxWaitMs) {
    return Effect.succeed(defer(state, ctx, { ...a, locked: false, lockWaitSince: since }, ctx.envelope.ts + LOCK_RETRY_MS, `locked-by:${holder}`, resume))
  }
  return stop(state, ctx, lock, { ...a, locked: false }, "lock", `${a.policy.onConflict === "wait" ? "lock-wait-timeout:" : ""}locked-by:${holder}`)
}

/** Whether an engagement may be preempted: nothing of it is being delivered or analysed. */
export const preemptible = (a: Active) => a.phase === "drafting" || a.phase === "deferred" || a.phase === "waiting"

/** The delivery's idempotency key: one per tenant, campaign, contact, touch and channel. */
export const deliveryKey = (ctx: Actor.ActorContext, a: Active) => `${ctx.tenant}/${a.campaignId}/${a.contact.id}/${a.touch}/${a.channel}`

/**
 * Asks the executor to deliver the kept draft, and to pass an outcome known at once straight
 * to the analyzer: the contact then hears `Analysed` with the delivery (`delivered`), not
 * `Delivered` first. A call left running answers `DeliveryPending` as before.
 */
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
    leadScore: a.contact.leadScore,
    analyse: { allowanceLeftUsd: a.allowance === null ? null : a.allowance.usd - a.spent.usd }
  })
  return { ...state, active: { ...a, phase: "delivering", wake: null, call: a.channel === "voice" ? (a.call ?? VoiceCall.placed(key, null)) : null } }
}

/** The touch was delivered: one action, and its message or its call minutes, are charged. */
export const delivered = (ctx: Actor.ActorContext, a: Active, outcome: Campaign.DeliveryOutcome, durationSec: number): Active => {
  progress(ctx, a.campaignId, "delivered", a.channel)
  return { ...charge(a, ChannelPrices.costUsd(a.channel, durationSec), 1), phase: "analysing", outcome }
}

/** The delivery's outcome is known here (a `Delivered`, a call's end): ask the analyzer. */
export const outcomeKnown = (
  state: State,
  ctx: Actor.ActorContext,
  sent: Active,
  outcome: Campaign.DeliveryOutcome,
  transcript: string | null,
  durationSec = 0
): State => {
  const a = delivered(ctx, sent, outcome, durationSec)
  ctx.send(Address.agent("analyzer"), Campaign.AnalyseRequested, {
    campaignId: a.campaignId as never,
    contactId: a.contact.id,
    channel: a.channel,
    outcome,
    transcript,
    leadScore: a.contact.leadScore,
    ...(a.allowance === null ? {} : { maxCostUsd: Math.max(0, a.allowance.usd - a.spent.usd) })
  })
  return { ...state, active: a }
}

/** After an analysis: finish, or schedule the next touch of the sequence. */
export const afterAnalysis = (state: State, ctx: Actor.ActorContext, lock: Lock, a: Active, leadStatus: string) =>
  Effect.gen(function* () {
    progress(ctx, a.campaignId, "analysed", a.channel)
    yield* lock.release(a.campaignId)
    const done = { ...a, locked: false }
    if (a.stop !== null) return finish({ ...state, active: a }, ctx, a.campaignId, stoppedStatus(a, a.stop), reasonOf(a.stop), a.channel, a.outcome, a.touch)
    const reached = reachedBy(a.outcome)
    const next = DispatchPolicy.consentedChannel(a.contact, a.sequence, a.sequence.indexOf(a.channel) + 1)
    const more = a.touch < a.maxTouches && next !== null && a.outcome !== "answered" && leadStatus !== "converted" && leadStatus !== "unqualified"
    if (more) {
      return defer(state, ctx, { ...done, channel: next, touch: a.touch + 1, draft: null, call: null }, ctx.envelope.ts + a.gapMs, "next-touch", "touch")
    }
    const status: Campaign.ContactStatus = leadStatus === "converted" ? "converted" : reached ? "reached" : "failed"
    return finish({ ...state, active: a }, ctx, a.campaignId, status, reached ? null : `not-reached:${a.outcome}`, a.channel, a.outcome, a.touch)
  })

/**
 * An inbound signal: opt-out is remembered for good; any signal ends the sequence; an
 * answer to a campaign whose engagement had already ended is reported to that campaign.
 */
export const inbound = (state: State, ctx: Actor.ActorContext, lock: Lock, signal: typeof Dispatch.ContactInbound.payload.Type) =>
  Effect.gen(function* () {
    const s: State = signal.kind === "opt-out" ? { ...state, optedOut: true } : state
    const a = s.active
    if (a === null || (signal.campaignId !== null && signal.campaignId !== a.campaignId)) return lateAnswer(s, ctx, signal)
    if (a.phase === "waiting" || a.phase === "deferred") return yield* stop(s, ctx, lock, a, signal.kind, reasonOf(signal.kind))
    return { ...s, active: { ...a, stop: a.stop ?? signal.kind } }
  })
