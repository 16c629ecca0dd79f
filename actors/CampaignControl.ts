/**
 * Steering a live campaign: the approval gate of high-risk plans, pause, resume, cancel
 * and edit commands, and the campaign-level rate watch (outcome counters, periodic review
 * by the analyzer, and the adjustments it proposes: applied when they lower risk, escalated
 * for approval when they raise it, always with the reason). Functions over the campaign
 * actor's state; the actor wires them to its messages.
 */
import { Effect } from "effect"
import { Address, Campaign, Control, Dispatch } from "../protocols/index.js"
import type { Actor } from "../runtime/index.js"
import type { State } from "./CampaignActor.js"
import * as Risk from "./guardrails/Risk.js"

/** Completed contacts between two reviews of the campaign's rates. */
export const REVIEW_EVERY = 25

/** The campaign flow steps the controls call back into. */
export interface Flow<E, R> {
  readonly dispatch: (s: State, ctx: Actor.ActorContext) => Effect.Effect<State, E, R>
  readonly complete: (s: State, ctx: Actor.ActorContext) => Effect.Effect<State, E, R>
}

/** Empty outcome counters. */
export const emptyStats: Dispatch.OutcomeStats = { completed: 0, byOutcome: {}, optOuts: 0, replies: 0, perChannel: {} }

const topic = (s: State) => Address.topic("campaign", s.spec!.campaignId)
const cid = (s: State) => s.spec!.campaignId

const changed = (s: State, ctx: Actor.ActorContext, state: "paused" | "resumed" | "cancelled" | "edited", reason: string | null, by: string) =>
  ctx.send(topic(s), Control.CampaignStateChanged, { campaignId: cid(s), state, reason, by })

const askApproval = (s: State, ctx: Actor.ActorContext, a: Campaign.ApprovalNeed) =>
  ctx.send(topic(s), Control.ApprovalRequested, { campaignId: cid(s), approvalId: a.approvalId, action: a.action, reason: a.reason, details: a.details })

/** A plan arrived: run it, or hold it until every approval it needs is granted. */
export const onPlan = <E, R>(s: State, ctx: Actor.ActorContext, flow: Flow<E, R>) => {
  if (s.cancelled !== null) return flow.complete({ ...s, status: "running" }, ctx)
  const needs = s.plan?.approvals ?? []
  if (needs.length === 0) return flow.dispatch({ ...s, status: "running" }, ctx)
  needs.forEach((a) => askApproval(s, ctx, a))
  return Effect.succeed<State>({ ...s, status: "awaiting-approval", approvals: needs })
}

/** Pause: no new contacts are engaged; contacts in flight finish their step. */
export const pause = (s: State, ctx: Actor.ActorContext, reason: string, by: string): State => {
  if (s.status !== "running" && s.status !== "awaiting-approval") return s
  changed(s, ctx, "paused", reason, by)
  return { ...s, status: "paused", resumeTo: s.status }
}

/** Resume a paused campaign where it was. */
export const resume = <E, R>(s: State, ctx: Actor.ActorContext, by: string, flow: Flow<E, R>) => {
  if (s.status !== "paused") return Effect.succeed(s)
  changed(s, ctx, "resumed", null, by)
  const back = s.resumeTo ?? "running"
  return back === "running" ? flow.dispatch({ ...s, status: "running", resumeTo: null }, ctx) : Effect.succeed<State>({ ...s, status: back, resumeTo: null })
}

/** Cancel: nothing new is engaged; the campaign completes when the contacts in flight finish. */
export const cancel = <E, R>(s: State, ctx: Actor.ActorContext, reason: string, by: string, flow: Flow<E, R>) => {
  if (s.spec === null || s.status === "completed" || s.status === "rejected" || s.cancelled !== null) return Effect.succeed(s)
  changed(s, ctx, "cancelled", reason, by)
  const next: State = { ...s, status: s.status === "new" || s.status === "planning" ? s.status : "running", cancelled: reason, approvals: [] }
  return next.counts.inProgress === 0 && next.plan !== null ? flow.complete(next, ctx) : Effect.succeed(next)
}

/** Edit target count, budget or channels of a live campaign. */
export const edit = <E, R>(s: State, ctx: Actor.ActorContext, e: typeof Control.EditCampaign.payload.Type, flow: Flow<E, R>) => {
  if (s.spec === null || s.status === "completed" || s.status === "rejected" || s.cancelled !== null) return Effect.succeed(s)
  const spec = { ...s.spec, ...(e.targetCount ? { targetCount: e.targetCount } : {}), ...(e.budget ? { budget: e.budget } : {}), ...(e.channels ? { channels: e.channels } : {}) }
  const plan =
    s.plan === null || e.channels === undefined
      ? s.plan
      : { ...s.plan, channelSequence: (e.channels.filter((c) => spec.channels.includes(c)) as unknown) as Campaign.Plan["channelSequence"] }
  const matching = s.plan?.matching ?? s.plan?.limit ?? 0
  const limit = s.plan === null ? s.limit : Math.max(s.counts.dispatched, Math.min(matching, spec.targetCount, spec.budget.maxActions))
  changed(s, ctx, "edited", JSON.stringify({ targetCount: e.targetCount, budget: e.budget, channels: e.channels }), e.by)
  const next: State = { ...s, spec, plan, limit, exhausted: s.exhausted && limit <= s.counts.dispatched }
  return next.status === "running" ? flow.dispatch(next, ctx) : Effect.succeed(next)
}

/** Approve a pending approval: a plan runs when its last approval is granted; an escalated adjustment applies. */
export const approve = <E, R>(s: State, ctx: Actor.ActorContext, approvalId: string, by: string, flow: Flow<E, R>) => {
  const escalated = s.escalations[approvalId]
  const pending = s.approvals.some((a) => a.approvalId === approvalId)
  if (!pending && escalated === undefined) return Effect.succeed(s)
  ctx.send(topic(s), Control.ApprovalDecided, { campaignId: cid(s), approvalId, decision: "approved", by, reason: null })
  if (escalated !== undefined) {
    const { [approvalId]: _, ...rest } = s.escalations
    return Effect.succeed(apply({ ...s, escalations: rest }, ctx, escalated))
  }
  const approvals = s.approvals.filter((a) => a.approvalId !== approvalId)
  // approved while paused: resume goes straight to running
  const next: State = { ...s, approvals, resumeTo: s.status === "paused" && approvals.length === 0 ? "running" : s.resumeTo }
  if (approvals.length > 0 || s.status !== "awaiting-approval") return Effect.succeed(next)
  return flow.dispatch({ ...next, status: "running" }, ctx)
}

/** Reject a pending approval: a rejected plan cancels the campaign; a rejected adjustment is dropped. */
export const reject = <E, R>(s: State, ctx: Actor.ActorContext, r: typeof Control.RejectAction.payload.Type, flow: Flow<E, R>) => {
  const escalated = s.escalations[r.approvalId]
  const pending = s.approvals.some((a) => a.approvalId === r.approvalId)
  if (!pending && escalated === undefined) return Effect.succeed(s)
  ctx.send(topic(s), Control.ApprovalDecided, { campaignId: cid(s), approvalId: r.approvalId, decision: "rejected", by: r.by, reason: r.reason })
  if (escalated !== undefined) {
    const { [r.approvalId]: _, ...rest } = s.escalations
    return Effect.succeed<State>({ ...s, escalations: rest })
  }
  return cancel({ ...s, status: s.status === "awaiting-approval" ? "running" : s.status }, ctx, `approval ${r.approvalId} rejected: ${r.reason}`, r.by, flow)
}

/** Counts a finished contact into the outcome counters. */
export const record = (s: State, c: typeof Campaign.ContactCompleted.payload.Type): State => {
  const st = s.stats
  const outcome = c.outcome ?? null
  return {
    ...s,
    stats: {
      completed: st.completed + 1,
      byOutcome: outcome === null ? st.byOutcome : { ...st.byOutcome, [outcome]: (st.byOutcome[outcome] ?? 0) + 1 },
      // opted out during this campaign (those opted out before are skipped as `opted-out`)
      optOuts: st.optOuts + (c.reason === "unsubscribed" ? 1 : 0),
      replies: st.replies + (c.reason === "replied" || c.reason === "meeting-booked" ? 1 : 0),
      perChannel: s.perChannel
    }
  }
}

/** Asks the analyzer for a review every `REVIEW_EVERY` completed contacts while running. */
export const maybeReview = (s: State, ctx: Actor.ActorContext): State => {
  if (s.status !== "running" || s.plan === null || s.stats.completed - s.reviewedAt < REVIEW_EVERY) return s
  ctx.send(Address.agent("analyzer"), Dispatch.CampaignReviewRequested, {
    campaignId: cid(s),
    stats: { ...s.stats, perChannel: s.perChannel },
    channelSequence: s.plan.channelSequence,
    window: s.window
  })
  return { ...s, reviewedAt: s.stats.completed }
}

const apply = (s: State, ctx: Actor.ActorContext, a: Dispatch.Adjustment): State => {
  ctx.send(topic(s), Dispatch.CampaignAdjusted, { campaignId: cid(s), adjustment: a, decision: "applied", approvalId: null })
  switch (a.kind) {
    case "pause":
      return pause(s, ctx, a.reason, "analyzer")
    case "slow-down":
      return { ...s, window: Math.max(1, Math.min(s.window, a.window ?? Math.floor(s.window / 2))) }
    case "switch-channel":
      return s.plan === null || a.channels === undefined ? s : { ...s, plan: { ...s.plan, channelSequence: a.channels } }
  }
}

/**
 * The analyzer's proposals: a pause or a slow-down lowers risk and applies at once; a
 * channel switch applies when it stays within the approval thresholds, else it waits for a
 * person (an `approval-requested` event with the reason).
 */
export const onAdjustments = (s: State, ctx: Actor.ActorContext, p: typeof Dispatch.AdjustmentProposed.payload.Type): State => {
  if (s.spec === null || s.plan === null || (s.status !== "running" && s.status !== "paused") || s.cancelled !== null) return s
  let next = s
  for (const a of p.adjustments) {
    if (a.kind === "switch-channel" && a.channels !== undefined) {
      const channels = a.channels.filter((c) => next.spec!.channels.includes(c))
      const remaining = Math.max(0, next.limit - next.counts.completed)
      const risky = Risk.assess({ campaignId: `${cid(next)}-adjust-${p.basedOn}`, contacts: remaining, channels, maxTouches: next.plan!.sequence?.maxTouches ?? 1 })
      if (channels.length === 0 || risky.length > 0) {
        const approvalId = `${cid(next)}-adjust-${p.basedOn}-${a.kind}`
        ctx.send(topic(next), Dispatch.CampaignAdjusted, { campaignId: cid(next), adjustment: a, decision: "escalated", approvalId })
        askApproval(next, ctx, { approvalId, action: a.kind, reason: `${a.reason}; ${risky.map((r) => r.reason).join("; ") || "channel not enabled"}`, details: { channels } })
        next = { ...next, escalations: { ...next.escalations, [approvalId]: a } }
        continue
      }
    }
    next = apply(next, ctx, a)
  }
  return next
}
