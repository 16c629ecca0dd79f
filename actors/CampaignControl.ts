/**
 * Steering a live campaign: the approval gate of high-risk plans, pause, resume, cancel
 * and edit commands, the planner's workflow-control actions (pause, adjust priority,
 * escalate: each asked for approval when it arrives, applied only when approved), and the
 * campaign-level rate watch (outcome counters, periodic review by the analyzer, and the
 * adjustments it proposes: applied when they lower risk, escalated for approval when they
 * raise it, always with the reason). Functions over the campaign actor's state; the actor
 * wires them to its messages.
 */
import { Effect, Schema } from "effect"
import { Address, Campaign, Control, Dispatch, Planner as PlannerProtocol } from "../protocols/index.js"
import type { Actor } from "../runtime/index.js"
import type { State } from "./CampaignActor.js"
import * as CampaignPace from "./CampaignPace.js"
import * as Risk from "./guardrails/Risk.js"

/** Completed contacts between two reviews of the campaign's rates. */
export const REVIEW_EVERY = 25

/** The campaign flow steps the controls call back into. */
export interface Flow<E, R> {
  readonly dispatch: (s: State, ctx: Actor.ActorContext) => Effect.Effect<State, E, R>
  readonly complete: (s: State, ctx: Actor.ActorContext) => Effect.Effect<State, E, R>
  /** Asks the planner for the campaign's plan (the campaign is `planning` afterwards). */
  readonly requestPlan: (s: State, ctx: Actor.ActorContext) => State
}

/** Empty outcome counters. */
export const emptyStats: Dispatch.OutcomeStats = { completed: 0, byOutcome: {}, optOuts: 0, replies: 0, perChannel: {} }

/** A workflow-control action of the planner, held by the campaign until a person decides. */
export const AgentAction = Schema.Struct({
  action: PlannerProtocol.WorkflowAction,
  step: Schema.Int,
  reason: Schema.String,
  decision: Schema.Literal("pending", "approved", "rejected"),
  decidedBy: Schema.NullOr(Schema.String),
  /** Applied to the campaign (a pause approved while the plan is still being made applies when it arrives). */
  applied: Schema.Boolean
})
export type AgentAction = typeof AgentAction.Type

/** A priority the planner set for the contacts matching `filter` (approved); the last matching rule wins. */
export const PriorityRule = Schema.Struct({
  filter: Campaign.AudienceFilter,
  priority: PlannerProtocol.AdjustPriorityAction.fields.priority,
  approvalId: Schema.String
})
export type PriorityRule = typeof PriorityRule.Type

/** Contact-lock priority change per priority level, relative to the campaign's own. */
const priorityDelta: Readonly<Record<PriorityRule["priority"], number>> = { low: -1, normal: 0, high: 1 }

const topic = (s: State) => Address.topic("campaign", s.spec!.campaignId)
const cid = (s: State) => s.spec!.campaignId

/** Paused before it had a plan (its planning failed): resuming asks for the plan again. */
const planless = (s: State) => s.status === "paused" && s.resumeTo === "planning"

const changed = (s: State, ctx: Actor.ActorContext, state: "paused" | "resumed" | "cancelled" | "edited", reason: string | null, by: string) =>
  ctx.send(topic(s), Control.CampaignStateChanged, { campaignId: cid(s), state, reason, by })

const askApproval = (s: State, ctx: Actor.ActorContext, a: Campaign.ApprovalNeed) =>
  ctx.send(topic(s), Control.ApprovalRequested, { campaignId: cid(s), approvalId: a.approvalId, action: a.action, reason: a.reason, details: a.details })

/**
 * A plan arrived: run it, or hold it until every approval it needs is decided (those of the
 * planner's workflow actions were asked when they arrived; a pause approved meanwhile
 * holds the campaign now).
 */
export const onPlan = <E, R>(s: State, ctx: Actor.ActorContext, flow: Flow<E, R>) => {
  if (s.cancelled !== null) return flow.complete({ ...s, status: "running" }, ctx)
  const asked = new Set(s.approvals.map((a) => a.approvalId))
  const decided = (id: string) => (s.agentActions[id]?.decision ?? "pending") !== "pending"
  const fresh = (s.plan?.approvals ?? []).filter((a) => !asked.has(a.approvalId) && !decided(a.approvalId))
  fresh.forEach((a) => askApproval(s, ctx, a))
  const needs = [...s.approvals, ...fresh]
  let next: State = { ...s, status: needs.length === 0 ? "running" : "awaiting-approval", approvals: needs }
  for (const [id, a] of Object.entries(next.agentActions)) {
    if (a.decision === "approved" && !a.applied) next = applyAgentAction(next, ctx, id)
  }
  return next.status === "running" ? flow.dispatch(next, ctx) : Effect.succeed(next)
}

const reasonOf = (a: PlannerProtocol.WorkflowAction) =>
  a._tag === "adjust_priority" ? `set priority ${a.priority} for ${JSON.stringify(a.filter)}` : a._tag === "escalate" ? `${a.reason} (to ${a.to})` : a.reason

/**
 * A workflow-control action of the planner arrived: it is asked for approval at once and,
 * while the plan has not started, the plan waits for it too. A repeat changes nothing.
 */
export const onControlRequest = (s: State, ctx: Actor.ActorContext, r: typeof PlannerProtocol.ControlRequested.payload.Type): State => {
  if (s.spec === null || s.status === "completed" || s.status === "rejected" || s.cancelled !== null) return s
  if (s.agentActions[r.approvalId] !== undefined) return s
  const { _tag, ...input } = r.action
  const need: Campaign.ApprovalNeed = {
    approvalId: r.approvalId,
    action: _tag,
    reason: `planner: ${reasonOf(r.action)}`,
    details: { requestedBy: "agent:planner", step: r.step, ...input }
  }
  // the plan may have arrived first (a redelivery after a failover) and asked already
  const asked = s.approvals.some((a) => a.approvalId === r.approvalId)
  if (!asked) askApproval(s, ctx, need)
  const gates =
    s.status === "new" || s.status === "planning" || s.status === "awaiting-approval" || (s.status === "paused" && s.resumeTo === "awaiting-approval") || planless(s)
  const entry: AgentAction = { action: r.action, step: r.step, reason: r.reason, decision: "pending", decidedBy: null, applied: false }
  return { ...s, agentActions: { ...s.agentActions, [r.approvalId]: entry }, approvals: gates && !asked ? [...s.approvals, need] : s.approvals }
}

/** Applies an approved workflow action of the planner (a pause waits for the plan if it is still being made). */
const applyAgentAction = (s: State, ctx: Actor.ActorContext, id: string): State => {
  const a = s.agentActions[id]!
  if (a.action._tag === "pause_campaign" && (s.status === "new" || s.status === "planning" || planless(s))) return s
  const next: State = { ...s, agentActions: { ...s.agentActions, [id]: { ...a, applied: true } } }
  const by = `agent:planner (approved by ${a.decidedBy ?? "unknown"})`
  switch (a.action._tag) {
    case "pause_campaign":
      return pause(next, ctx, a.action.reason, by)
    case "adjust_priority":
      changed(next, ctx, "edited", JSON.stringify({ priority: a.action.priority, filter: a.action.filter }), by)
      return { ...next, priorities: [...next.priorities, { filter: a.action.filter, priority: a.action.priority, approvalId: id }] }
    case "escalate":
      // the person it went to decided: nothing more to do
      return next
  }
}

/** Whether a contact matches a filter (the rules of the contact repository's query). */
export const matches = (f: Campaign.AudienceFilter, c: Campaign.ContactSnapshot): boolean =>
  (f.segments === undefined || f.segments.includes(c.segment)) &&
  (f.industries === undefined || f.industries.includes(c.industry)) &&
  (f.regions === undefined || f.regions.includes(c.region)) &&
  (f.titleKeywords === undefined || f.titleKeywords.some((k) => c.title.toLowerCase().includes(k.toLowerCase()))) &&
  (f.minLeadScore === undefined || c.leadScore >= f.minLeadScore)

/** The contact-lock policy a contact is engaged with: the campaign's, moved by the last priority rule it matches. */
export const lockPolicyOf = (s: State, contact: Campaign.ContactSnapshot): { readonly lockPolicy?: Campaign.LockPolicy } => {
  const base = s.spec?.lockPolicy
  const rule = [...s.priorities].reverse().find((r) => matches(r.filter, contact))
  if (rule === undefined) return base ? { lockPolicy: base } : {}
  const policy = base ?? Campaign.defaultLockPolicy
  return { lockPolicy: { ...policy, priority: policy.priority + priorityDelta[rule.priority] } }
}

/** Pause: no new contacts are engaged; contacts in flight finish their step. */
export const pause = (s: State, ctx: Actor.ActorContext, reason: string, by: string): State => {
  if (s.status !== "running" && s.status !== "awaiting-approval") return s
  changed(s, ctx, "paused", reason, by)
  return { ...s, status: "paused", resumeTo: s.status }
}

/**
 * The plan never came (the planner failed past its retries, or its request or answer was
 * dead-lettered): the campaign pauses with the reason, for a person to resume (which asks
 * for the plan again) or cancel. Cancelled meanwhile, it completes at once.
 */
export const planningFailed = <E, R>(s: State, ctx: Actor.ActorContext, reason: string, flow: Flow<E, R>) => {
  if (s.status !== "planning") return Effect.succeed(s)
  if (s.cancelled !== null) return flow.complete({ ...s, status: "running" }, ctx)
  changed(s, ctx, "paused", reason, "runtime")
  return Effect.succeed<State>({ ...s, status: "paused", resumeTo: "planning" })
}

/** Resume a paused campaign where it was (one whose planning failed asks for its plan again). */
export const resume = <E, R>(s: State, ctx: Actor.ActorContext, by: string, flow: Flow<E, R>) => {
  if (s.status !== "paused") return Effect.succeed(s)
  changed(s, ctx, "resumed", null, by)
  const back = s.resumeTo ?? "running"
  if (back === "planning") return Effect.succeed(flow.requestPlan({ ...s, resumeTo: null }, ctx))
  return back === "running" ? flow.dispatch({ ...s, status: "running", resumeTo: null }, ctx) : Effect.succeed<State>({ ...s, status: back, resumeTo: null })
}

/** Cancel: nothing new is engaged; the campaign completes when the contacts in flight finish. */
export const cancel = <E, R>(s: State, ctx: Actor.ActorContext, reason: string, by: string, flow: Flow<E, R>) => {
  if (s.spec === null || s.status === "completed" || s.status === "rejected" || s.cancelled !== null) return Effect.succeed(s)
  changed(s, ctx, "cancelled", reason, by)
  const next: State = { ...s, status: s.status === "new" || s.status === "planning" ? s.status : "running", cancelled: reason, approvals: [] }
  // without a plan only one whose planning failed completes now; one still planning does when its plan comes
  return next.counts.inProgress === 0 && (next.plan !== null || planless(s)) ? flow.complete(next, ctx) : Effect.succeed(next)
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

/**
 * Approve a pending approval: a plan runs when its last approval is granted; an escalated
 * adjustment applies; a workflow action of the planner applies (a pause holds the campaign).
 */
export const approve = <E, R>(s: State, ctx: Actor.ActorContext, approvalId: string, by: string, flow: Flow<E, R>) => {
  const escalated = s.escalations[approvalId]
  const pending = s.approvals.some((a) => a.approvalId === approvalId)
  const agent = s.agentActions[approvalId]?.decision === "pending" ? s.agentActions[approvalId] : undefined
  if (!pending && escalated === undefined && agent === undefined) return Effect.succeed(s)
  ctx.send(topic(s), Control.ApprovalDecided, { campaignId: cid(s), approvalId, decision: "approved", by, reason: null })
  if (escalated !== undefined) {
    const { [approvalId]: _, ...rest } = s.escalations
    return Effect.succeed(apply({ ...s, escalations: rest }, ctx, escalated))
  }
  const approvals = s.approvals.filter((a) => a.approvalId !== approvalId)
  const opens = s.status === "awaiting-approval" && approvals.length === 0
  // approved while paused: resume goes straight to running
  let next: State = {
    ...s,
    approvals,
    status: opens ? "running" : s.status,
    resumeTo: s.status === "paused" && approvals.length === 0 && !planless(s) ? "running" : s.resumeTo
  }
  if (agent !== undefined) {
    next = { ...next, agentActions: { ...next.agentActions, [approvalId]: { ...agent, decision: "approved", decidedBy: by } } }
    next = applyAgentAction(next, ctx, approvalId)
  }
  return opens && next.status === "running" ? flow.dispatch(next, ctx) : Effect.succeed(next)
}

/**
 * Reject a pending approval: a rejected plan, or a rejected escalation of the planner,
 * cancels the campaign; a rejected adjustment, pause or priority change is dropped (the
 * plan goes on once its other approvals are granted).
 */
export const reject = <E, R>(s: State, ctx: Actor.ActorContext, r: typeof Control.RejectAction.payload.Type, flow: Flow<E, R>) => {
  const escalated = s.escalations[r.approvalId]
  const pending = s.approvals.some((a) => a.approvalId === r.approvalId)
  const agent = s.agentActions[r.approvalId]?.decision === "pending" ? s.agentActions[r.approvalId] : undefined
  if (!pending && escalated === undefined && agent === undefined) return Effect.succeed(s)
  ctx.send(topic(s), Control.ApprovalDecided, { campaignId: cid(s), approvalId: r.approvalId, decision: "rejected", by: r.by, reason: r.reason })
  if (escalated !== undefined) {
    const { [r.approvalId]: _, ...rest } = s.escalations
    return Effect.succeed<State>({ ...s, escalations: rest })
  }
  const marked: State =
    agent === undefined ? s : { ...s, agentActions: { ...s.agentActions, [r.approvalId]: { ...agent, decision: "rejected", decidedBy: r.by } } }
  if (agent !== undefined && agent.action._tag !== "escalate") {
    const approvals = marked.approvals.filter((a) => a.approvalId !== r.approvalId)
    const opens = marked.status === "awaiting-approval" && approvals.length === 0
    const next: State = {
      ...marked,
      approvals,
      status: opens ? "running" : marked.status,
      resumeTo: marked.status === "paused" && approvals.length === 0 && marked.resumeTo === "awaiting-approval" ? "running" : marked.resumeTo
    }
    return opens ? flow.dispatch(next, ctx) : Effect.succeed(next)
  }
  return cancel({ ...marked, status: marked.status === "awaiting-approval" ? "running" : marked.status }, ctx, `approval ${r.approvalId} rejected: ${r.reason}`, r.by, flow)
}

/** Whether a contact's finish reason says it answered (counted as `replied`). */
export const isAnswer = (reason: string | null | undefined) => reason === "replied" || reason === "meeting-booked"

/** A contact answered after its engagement ended: one more `replied`, and one more reply for the rate watch. */
export const lateAnswer = (s: State): State => ({
  ...s,
  counts: { ...s.counts, replied: s.counts.replied + 1 },
  stats: { ...s.stats, replies: s.stats.replies + 1 }
})

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
      replies: st.replies + (isAnswer(c.reason) ? 1 : 0),
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
    window: CampaignPace.limitOf(s.pace, s.window)
  })
  return { ...s, reviewedAt: s.stats.completed }
}

const apply = (s: State, ctx: Actor.ActorContext, a: Dispatch.Adjustment): State => {
  ctx.send(topic(s), Dispatch.CampaignAdjusted, { campaignId: cid(s), adjustment: a, decision: "applied", approvalId: null })
  switch (a.kind) {
    case "pause":
      return pause(s, ctx, a.reason, "analyzer")
    case "slow-down":
      // halves what is in flight now (the pace's limit), unless the analyzer named a window
      return { ...s, window: Math.max(1, Math.min(s.window, a.window ?? Math.floor(CampaignPace.limitOf(s.pace, s.window) / 2))) }
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
