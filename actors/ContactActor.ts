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
import { Address, Campaign, Dispatch, Message, Vapi } from "../protocols/index.js"
import { topicOf } from "./CampaignActor.js"
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

/** The contact lock: acquire by `create` (re-entrant for the same campaign), or preempt a lower priority. */
const lockOf = (ctx: Actor.ActorContext, locks: Locks.LocksService): Engagement.Lock => ({
  acquire: (campaignId, policy) =>
    policy.onConflict === "preempt"
      ? locks.preempt(lockKey(ctx.tenant, ctx.id), holderOf(campaignId), policy.priority)
      : locks.acquire(lockKey(ctx.tenant, ctx.id), holderOf(campaignId), policy.priority),
  release: (campaignId) => locks.release(lockKey(ctx.tenant, ctx.id), holderOf(campaignId))
})

/** Engagements waiting for one contact at most; beyond, a new one is skipped. */
export const MAX_WAITING = 32

/** The wake-up token of a waiting engagement's deadline. */
const waitToken = (campaignId: string) => `wait/${campaignId}`

type Engage = typeof Campaign.EngageContact.payload.Type

/**
 * Starts an engagement, or applies the campaign's lock policy when the contact is busy
 * with another campaign: skip, wait (queued durably in this actor's state, with a
 * deadline), or preempt an engagement of lower priority that has delivered nothing yet.
 * `dispatchedAt` is when the campaign sent the engagement (for one that waited, when it
 * came); the contact reports it back when it finishes, for the campaign's pace.
 */
const engage = (
  state: State,
  ctx: Actor.ActorContext,
  lock: Engagement.Lock,
  settings: DispatchPolicy.PolicySettings,
  e: Engage,
  dispatchedAt: number = ctx.envelope.ts
) =>
  Effect.gen(function* () {
    const { campaignId, contact, channels, brief, sequence } = e
    const policy = e.lockPolicy ?? Campaign.defaultLockPolicy
    let s = state
    if (s.active !== null) {
      const busy = s.active
      if (policy.onConflict === "skip") return Engagement.finish(s, ctx, campaignId, "skipped", `busy:${busy.campaignId}`, null, null, 0, dispatchedAt)
      if (policy.onConflict === "preempt" && policy.priority > busy.policy.priority && Engagement.preemptible(busy)) {
        s = yield* Engagement.stop(s, ctx, lock, busy, "preempted", `preempted-by:${campaignId}`)
      } else if (s.waiting.length >= MAX_WAITING) {
        return Engagement.finish(s, ctx, campaignId, "skipped", `busy:${busy.campaignId}:wait-queue-full`, null, null, 0, dispatchedAt)
      } else {
        // wait: queued here (durable: it is this actor's state), woken when the contact is free or at the deadline
        ctx.send(Address.agent("scheduler"), Dispatch.DeferRequested, {
          campaignId,
          contactId: ctx.id as never,
          wakeAt: ctx.envelope.ts + policy.maxWaitMs,
          reason: "lock-wait-deadline",
          token: waitToken(campaignId)
        })
        ctx.send(topicOf(campaignId), Campaign.ContactProgress, {
          campaignId,
          contactId: ctx.id as never,
          phase: "waiting",
          channel: null,
          status: null,
          reason: `busy:${busy.campaignId}`
        })
        return { ...s, waiting: [...s.waiting, { engage: e, since: dispatchedAt }] }
      }
    }
    const verdict = DispatchPolicy.check(settings, contact, s.optedOut, channels, ctx.envelope.ts)
    if (verdict._tag === "Skip") return Engagement.finish(s, ctx, campaignId, "skipped", verdict.reason, null, null, 0, dispatchedAt)
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
      locked: false,
      policy,
      lockWaitSince: null,
      allowance: e.allowance ?? null,
      spent: { actions: 0, usd: 0 },
      dispatchedAt
    }
    return yield* Engagement.startTouch(s, ctx, lock, settings, active)
  })

/** When the contact is free, the next waiting engagement (highest priority first, then oldest) starts. */
const promoteWaiting = (state: State, ctx: Actor.ActorContext, lock: Engagement.Lock, settings: DispatchPolicy.PolicySettings) =>
  Effect.gen(function* () {
    let s = state
    while (s.active === null && s.waiting.length > 0) {
      const order = [...s.waiting].sort(
        (x, y) => (y.engage.lockPolicy?.priority ?? 0) - (x.engage.lockPolicy?.priority ?? 0) || x.since - y.since
      )
      const [next, ...rest] = order
      s = yield* engage({ ...s, waiting: rest }, ctx, lock, settings, next!.engage, next!.since)
    }
    return s
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

/** One message, before waiting engagements are promoted. */
const step = (state: State, m: Message.Decoded, ctx: Actor.ActorContext, lock: Engagement.Lock, settings: DispatchPolicy.PolicySettings) =>
  Effect.gen(function* () {
    if (Message.is(Campaign.EngageContact)(m)) {
      const campaignId = m.payload.campaignId
      // a repeated engage for the same campaign changes nothing
      if (
        state.active?.campaignId === campaignId ||
        state.history.some((h) => h.campaignId === campaignId) ||
        state.waiting.some((w) => w.engage.campaignId === campaignId)
      ) return state
      return yield* engage(state, ctx, lock, settings, m.payload)
    }
    if (Message.is(Dispatch.ContactInbound)(m)) return yield* Engagement.inbound(state, ctx, lock, m.payload)
    if (Message.is(Dispatch.StepDue)(m) && m.payload.token.startsWith("wait/")) {
      // a waiting engagement's deadline: if it still waits, it is skipped
      const w = state.waiting.find((x) => waitToken(x.engage.campaignId) === m.payload.token)
      if (w === undefined) return state
      const rest = { ...state, waiting: state.waiting.filter((x) => x !== w) }
      return Engagement.finish(rest, ctx, w.engage.campaignId, "skipped", `lock-wait-timeout:busy:${state.active?.campaignId ?? "none"}`, null, null, 0, w.since)
    }
    const a = state.active
    const campaignOf = (m.payload as { campaignId?: string | null }).campaignId
    if (a === null || (campaignOf != null && campaignOf !== a.campaignId)) return state
    if (Message.is(Campaign.Drafted)(m)) {
      if (a.phase !== "drafting") return state
      const paid = Engagement.charge(a, m.payload.cost?.usd ?? 0)
      if (paid.stop !== null) return yield* Engagement.stop(state, ctx, lock, paid, paid.stop, Engagement.reasonOf(paid.stop))
      const filter = m.payload.filter
      if (filter?.verdict === "blocked") return yield* Engagement.stop(state, ctx, lock, paid, "content", `content-blocked:${filter.reasons.join(",")}`)
      const over = Engagement.overBudget(paid)
      if (over !== null) return yield* Engagement.stop(state, ctx, lock, paid, "budget", over)
      Engagement.progress(ctx, a.campaignId, "drafted", a.channel)
      return Engagement.deliver(state, ctx, { ...paid, draft: { subject: m.payload.subject, body: m.payload.body } })
    }
    if (Message.is(Campaign.Delivered)(m)) {
      if (a.phase !== "delivering" || m.payload.idempotencyKey !== Engagement.deliveryKey(ctx, a)) return state
      return Engagement.outcomeKnown(state, ctx, a, m.payload.outcome, m.payload.transcript, m.payload.durationSec)
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
      const got = yield* lock.acquire(a.campaignId, a.policy)
      if (got._tag === "Held") return yield* Engagement.lockConflict(state, ctx, lock, a, got.holder, "deliver")
      return Engagement.deliver(state, ctx, { ...a, locked: true })
    }
    const event = callEvent(m)
    if (event !== null) {
      if (a.call === null || (a.phase !== "delivering" && a.phase !== "calling")) return state
      const next = VoiceCall.apply(a.call, event)
      const updated = { ...a, call: next.call }
      return next.ended === null
        ? { ...state, active: updated }
        : Engagement.outcomeKnown(state, ctx, updated, next.ended.outcome, next.ended.transcript, next.ended.durationSec)
    }
    if (Message.is(Campaign.Analysed)(m)) {
      const d = m.payload.delivery
      // with a delivery, the executor passed the outcome on: this is where the contact learns of it
      const expected = d === undefined ? a.phase === "analysing" : a.phase === "delivering" && d.idempotencyKey === Engagement.deliveryKey(ctx, a)
      if (!expected) return state
      const analysed = d === undefined ? a : Engagement.delivered(ctx, a, d.outcome, d.durationSec)
      return yield* Engagement.afterAnalysis(state, ctx, lock, Engagement.charge(analysed, m.payload.cost?.usd ?? 0), m.payload.leadStatus)
    }
    return state
  })

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
  initial: (): State => ({ active: null, history: [], optedOut: false, waiting: [] }),
  isIdle: (s) => s.active === null,
  handle: Effect.fnUntraced(function* (state: State, m: Message.Decoded, ctx: Actor.ActorContext) {
    const lock = lockOf(ctx, yield* Locks.Locks)
    const settings = yield* Effect.flatMap(DispatchPolicy.DispatchPolicy, (p) => p.settings)
    const next = yield* step(state, m, ctx, lock, settings)
    return next.active === null && next.waiting.length > 0 ? yield* promoteWaiting(next, ctx, lock, settings) : next
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
