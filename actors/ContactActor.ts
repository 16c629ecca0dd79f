/**
 * The contact actor (one per contact, across campaigns). For an engagement it checks
 * opt-out and consent, takes the contact lock (one holder across all nodes and
 * campaigns), then walks the contact through content → executor → analyzer over NATS,
 * releases the lock and reports the terminal status to its campaign. Every step is a
 * progress event. When idle it holds nothing and is passivated.
 */
import { Effect, Schema } from "effect"
import { Address, Campaign, Message } from "../protocols/index.js"
import { Actor, Locks } from "../runtime/index.js"
import { addressOf as campaignAddress, topicOf } from "./CampaignActor.js"

/** The step a contact is at within its active engagement. */
const Phase = Schema.Literal("drafting", "delivering", "analysing")

/** Persisted state of a contact actor. */
export const State = Schema.Struct({
  active: Schema.NullOr(
    Schema.Struct({
      campaignId: Schema.String,
      contact: Campaign.ContactSnapshot,
      channel: Campaign.Channel,
      brief: Campaign.Brief,
      phase: Phase,
      outcome: Schema.NullOr(Campaign.DeliveryOutcome)
    })
  ),
  /** Campaigns this contact finished, most recent last (bounded). */
  history: Schema.Array(Schema.Struct({ campaignId: Schema.String, status: Campaign.ContactStatus, at: Schema.Number }))
})
export type State = typeof State.Type

const HISTORY = 20

/** The lock key of a contact. */
export const lockKey = (tenant: string, contactId: string) => `contact.${tenant}.${contactId}`
/** The lock holder name of a campaign. */
export const holderOf = (campaignId: string) => `campaign:${campaignId}`

/** The first channel of the sequence the contact can be reached on, with consent. */
export const pickChannel = (
  contact: Campaign.ContactSnapshot,
  sequence: ReadonlyArray<Campaign.Channel>
): Campaign.Channel | null =>
  sequence.find((c) =>
    c === "email" ? contact.email !== null && contact.consent.email : contact.phone !== null && contact.consent[c]
  ) ?? null

const finish = (
  state: State,
  ctx: Actor.ActorContext,
  campaignId: string,
  status: Campaign.ContactStatus,
  reason: string | null,
  channel: Campaign.Channel | null
) => {
  const contactId = ctx.id as Campaign.ContactSnapshot["id"]
  const cid = campaignId as Campaign.ContactSnapshot["id"] & never
  ctx.send(campaignAddress(campaignId), Campaign.ContactCompleted, { campaignId: cid, contactId, status, reason, channel })
  ctx.send(topicOf(campaignId), Campaign.ContactProgress, {
    campaignId: cid,
    contactId,
    phase: "completed",
    channel,
    status,
    reason
  })
  return {
    active: state.active?.campaignId === campaignId ? null : state.active,
    history: [...state.history, { campaignId, status, at: ctx.envelope.ts }].slice(-HISTORY)
  }
}

const progress = (ctx: Actor.ActorContext, campaignId: string, phase: "engaged" | "drafted" | "delivered" | "analysed", channel: Campaign.Channel) =>
  ctx.send(topicOf(campaignId), Campaign.ContactProgress, {
    campaignId: campaignId as never,
    contactId: ctx.id as never,
    phase,
    channel,
    status: null,
    reason: null
  })

const release = (ctx: Actor.ActorContext, campaignId: string) =>
  Effect.flatMap(Locks.Locks, (locks) => locks.release(lockKey(ctx.tenant, ctx.id), holderOf(campaignId)))

/** The contact actor definition. */
export const ContactActor = Actor.make({
  type: "contact",
  accepts: [Campaign.EngageContact, Campaign.Drafted, Campaign.Delivered, Campaign.Analysed],
  state: State,
  initial: (): State => ({ active: null, history: [] }),
  isIdle: (s) => s.active === null,
  handle: Effect.fn("ContactActor.handle")(function* (state: State, m: Message.Decoded, ctx: Actor.ActorContext) {
    if (Message.is(Campaign.EngageContact)(m)) {
      const { campaignId, contact, channels, brief } = m.payload
      // a repeated engage for the same campaign changes nothing
      if (state.active?.campaignId === campaignId || state.history.some((h) => h.campaignId === campaignId)) return state
      if (state.active !== null) return finish(state, ctx, campaignId, "skipped", `busy:${state.active.campaignId}`, null)
      if (contact.optedOut) return finish(state, ctx, campaignId, "skipped", "opted-out", null)
      const channel = pickChannel(contact, channels)
      if (channel === null) return finish(state, ctx, campaignId, "skipped", "no-consented-channel", null)
      const locks = yield* Locks.Locks
      const lock = yield* locks.acquire(lockKey(ctx.tenant, ctx.id), holderOf(campaignId))
      if (lock._tag === "Held") return finish(state, ctx, campaignId, "skipped", `locked-by:${lock.holder}`, null)
      ctx.send(Address.agent("content"), Campaign.DraftRequested, { campaignId, contact, channel, brief })
      progress(ctx, campaignId, "engaged", channel)
      return { ...state, active: { campaignId, contact, channel, brief, phase: "drafting" as const, outcome: null } }
    }
    const a = state.active
    if (Message.is(Campaign.Drafted)(m)) {
      if (a === null || a.phase !== "drafting" || a.campaignId !== m.payload.campaignId) return state
      const to = a.channel === "email" ? a.contact.email! : a.contact.phone!
      ctx.send(Address.agent("executor"), Campaign.DeliverRequested, {
        campaignId: m.payload.campaignId,
        contactId: a.contact.id,
        channel: a.channel,
        to,
        subject: m.payload.subject,
        body: m.payload.body,
        idempotencyKey: `${ctx.tenant}/${a.campaignId}/${a.contact.id}/1/${a.channel}`,
        leadScore: a.contact.leadScore
      })
      progress(ctx, a.campaignId, "drafted", a.channel)
      return { ...state, active: { ...a, phase: "delivering" as const } }
    }
    if (Message.is(Campaign.Delivered)(m)) {
      if (a === null || a.phase !== "delivering" || a.campaignId !== m.payload.campaignId) return state
      ctx.send(Address.agent("analyzer"), Campaign.AnalyseRequested, {
        campaignId: m.payload.campaignId,
        contactId: a.contact.id,
        channel: a.channel,
        outcome: m.payload.outcome,
        transcript: m.payload.transcript,
        leadScore: a.contact.leadScore
      })
      progress(ctx, a.campaignId, "delivered", a.channel)
      return { ...state, active: { ...a, phase: "analysing" as const, outcome: m.payload.outcome } }
    }
    if (Message.is(Campaign.Analysed)(m)) {
      if (a === null || a.phase !== "analysing" || a.campaignId !== m.payload.campaignId) return state
      progress(ctx, a.campaignId, "analysed", a.channel)
      yield* release(ctx, a.campaignId)
      const reached = a.outcome === "answered" || a.outcome === "voicemail" || a.outcome === "sent"
      const status: Campaign.ContactStatus = m.payload.leadStatus === "converted" ? "converted" : reached ? "reached" : "failed"
      return finish(state, ctx, a.campaignId, status, reached ? null : `not-reached:${a.outcome}`, a.channel)
    }
    return state
  }),
  // a step failed past its retries (here or in an agent): free the contact, tell the campaign
  onDeadLetter: (state: State, _m: Message.Decoded, error: unknown, ctx: Actor.ActorContext) =>
    Effect.gen(function* () {
      const a = state.active
      if (a === null) return state
      yield* release(ctx, a.campaignId).pipe(Effect.ignore)
      const tag = (error as { reason?: string; error?: { _tag?: string } })
      const reason = `error:${tag.error?._tag ?? tag.reason ?? (error as { _tag?: string })._tag ?? "unknown"}`
      return finish(state, ctx, a.campaignId, "failed", reason, a.channel)
    })
})
