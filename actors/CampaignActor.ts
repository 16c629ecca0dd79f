/**
 * The campaign actor (one per campaign): validates the start command, asks the planner
 * for a plan, streams the planned audience to contact actors in bounded windows (no more
 * contacts in flight than its pace allows, `WINDOW` at most, so memory stays flat whatever
 * the audience size),
 * counts terminal outcomes (and answers that come after a contact's engagement ended),
 * emits progress events and writes the summary when done.
 * High-risk plans wait for approval; pause, resume, cancel and edit steer it while live,
 * the planner's workflow-control actions wait for approval before they apply, and the
 * analyzer's rate watch adjusts it (see `CampaignControl`).
 */
import { Effect, Schema } from "effect"
import { Address, Campaign, Control, DeadLetter, Dispatch, Message, Planner as PlannerProtocol } from "../protocols/index.js"
import { Actor, RuntimeErrors } from "../runtime/index.js"
import { CampaignRepo } from "../storage/CampaignRepo.js"
import { ContactRepo, Cursor, takeFirst } from "../storage/ContactRepo.js"
import * as CampaignBudget from "./CampaignBudget.js"
import * as CampaignControl from "./CampaignControl.js"
import * as CampaignPace from "./CampaignPace.js"
import { TenantBudget } from "./TenantBudget.js"

/**
 * Contacts in flight per campaign at most: the cap of its pace (`CampaignPace`), which
 * keeps fewer in flight where more would only queue. A new window is fetched when in-flight
 * work falls to half of the pace's limit.
 */
export const WINDOW = 2048
/**
 * Contacts engaged per handled message at most: what one step sends is committed with the
 * actor's state (transactional outbox), so it stays small; the window fills over a few steps.
 */
export const MAX_ENGAGE_PER_STEP = 128

const Counts = Campaign.CampaignCounts

/** Persisted state of a campaign actor. */
export const State = Schema.Struct({
  status: Schema.Literal("new", "planning", "awaiting-approval", "running", "paused", "completed", "rejected"),
  spec: Schema.NullOr(Campaign.StartCampaign.payload),
  plan: Schema.NullOr(Campaign.Plan),
  limit: Schema.Int,
  cursor: Schema.NullOr(Cursor),
  exhausted: Schema.Boolean,
  counts: Counts,
  skippedReasons: Schema.Record({ key: Schema.String, value: Schema.Int }),
  perChannel: Schema.Record({ key: Schema.String, value: Schema.Struct({ attempted: Schema.Int, reached: Schema.Int }) }),
  startedAt: Schema.Number,
  completedAt: Schema.NullOr(Schema.Number),
  // steering (fields added later decode with defaults)
  /** Where `resume` returns to. */
  resumeTo: Schema.optionalWith(Schema.NullOr(Schema.Literal("running", "awaiting-approval", "planning")), { default: () => null }),
  /** Approvals the plan still waits for. */
  approvals: Schema.optionalWith(Schema.Array(Campaign.ApprovalNeed), { default: () => [] }),
  /** Adjustments escalated for approval, by approval id. */
  escalations: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Dispatch.Adjustment }), { default: () => ({}) }),
  /** Contacts in flight at most (lowered by a slow-down): the cap of the pace. */
  window: Schema.optionalWith(Schema.Int, { default: () => WINDOW }),
  /** How many contacts in flight the deployment keeps busy without queueing them (see `CampaignPace`). */
  pace: Schema.optionalWith(CampaignPace.Pace, { default: () => CampaignPace.initial }),
  /** Outcome counters of the rate watch, and the completed count at the last review. */
  stats: Schema.optionalWith(Dispatch.OutcomeStats, { default: () => CampaignControl.emptyStats }),
  reviewedAt: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  /** Set when cancelled: nothing new is engaged, and why. */
  cancelled: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  /** The planner's workflow-control actions, by approval id: pending until a person decides. */
  agentActions: Schema.optionalWith(Schema.Record({ key: Schema.String, value: CampaignControl.AgentAction }), { default: () => ({}) }),
  /** Contact priorities the planner set (approved): they move the contact-lock priority of engagements. */
  priorities: Schema.optionalWith(Schema.Array(CampaignControl.PriorityRule), { default: () => [] }),
  /** Budget: reserved and spent actions and money (see `CampaignBudget`). */
  budget: Schema.optionalWith(CampaignBudget.Ledger, { default: () => CampaignBudget.empty }),
  /** What each contact is allowed to spend (reserved when it is engaged); null before the plan. */
  allowance: Schema.optionalWith(Schema.NullOr(Campaign.Spend), { default: () => null }),
  /** What this campaign holds of its tenant's budget (null: nothing yet, or the tenant has no limit). */
  tenantGrant: Schema.optionalWith(Schema.NullOr(Campaign.Spend), { default: () => null })
})
export type State = typeof State.Type

const emptyCounts: Campaign.CampaignCounts = {
  targeted: 0,
  dispatched: 0,
  inProgress: 0,
  completed: 0,
  reached: 0,
  replied: 0,
  converted: 0,
  skipped: 0,
  failed: 0
}

/** The topic a campaign's events go to. */
export const topicOf = (campaignId: string) => Address.topic("campaign", campaignId)
/** The address of a campaign actor. */
export const addressOf = (campaignId: string) => Address.actor("campaign", campaignId)

const dispatch = (state: State, ctx: Actor.ActorContext) =>
  Effect.gen(function* () {
    if (state.status !== "running" || state.plan === null || state.spec === null) return state
    let s = state
    const inFlightMax = CampaignPace.limitOf(s.pace, s.window)
    if (s.cancelled === null && !s.exhausted && s.counts.dispatched < s.limit && s.counts.inProgress <= Math.floor(inFlightMax / 2)) {
      const repo = yield* ContactRepo
      const want = Math.min(inFlightMax - s.counts.inProgress, s.limit - s.counts.dispatched, MAX_ENGAGE_PER_STEP)
      const per = s.allowance ?? CampaignBudget.allowanceOf(s.plan!)
      const fits = CampaignBudget.affordable(s.spec!.budget, s.budget, per, want)
      if (fits.n === 0) {
        // nothing fits now: wait for contacts in flight to give back what they did not use, or pause
        if (s.counts.inProgress > 0) return s
        CampaignBudget.announce(ctx, s.spec!.campaignId, CampaignBudget.campaignShortfall(s.spec!.budget, s.budget, per, fits.limitedBy!))
        return CampaignControl.pause(s, ctx, `budget-exhausted:${fits.limitedBy}`, "runtime")
      }
      // the tenant's grant (a KV round trip when the campaign's grant is used up) and the
      // audience window are asked for together; the window is cut to what the grant allows
      const [tenantFit, fetched] = yield* Effect.all(
        [CampaignBudget.withinTenant(s, ctx, per, fits.n), repo.window(ctx.tenant, s.plan!.audience, s.cursor, fits.n)],
        { concurrency: 2 }
      )
      if (tenantFit.n === 0) {
        if (s.counts.inProgress > 0) return s
        CampaignBudget.announce(ctx, s.spec!.campaignId, tenantFit.shortfall!)
        return CampaignControl.pause(s, ctx, `budget-exhausted:tenant:${tenantFit.shortfall!.budget}`, "runtime")
      }
      s = { ...s, tenantGrant: tenantFit.grant }
      const window = takeFirst(fetched, tenantFit.n)
      for (const contact of window.contacts) {
        ctx.send(Address.actor("contact", contact.id), Campaign.EngageContact, {
          campaignId: s.spec!.campaignId,
          contact,
          channels: s.plan!.channelSequence,
          brief: s.plan!.brief,
          ...(s.plan!.sequence ? { sequence: s.plan!.sequence } : {}),
          ...CampaignControl.lockPolicyOf(s, contact),
          allowance: per
        })
      }
      const n = window.contacts.length
      const dispatched = s.counts.dispatched + n
      s = {
        ...s,
        pace: CampaignPace.started(s.pace, ctx.envelope.ts),
        allowance: per,
        budget: CampaignBudget.reserve(s.budget, per, n),
        cursor: window.next ?? s.cursor,
        exhausted: window.next === null || n < tenantFit.n || dispatched >= s.limit,
        counts: { ...s.counts, dispatched, targeted: dispatched, inProgress: s.counts.inProgress + n }
      }
    }
    if ((s.exhausted || s.counts.dispatched >= s.limit || s.cancelled !== null) && s.counts.inProgress === 0) return yield* complete(s, ctx)
    return s
  })

const complete = (s: State, ctx: Actor.ActorContext) =>
  Effect.gen(function* () {
    const completedAt = ctx.envelope.ts
    const summary: Campaign.CampaignSummary = {
      counts: s.counts,
      skippedReasons: s.skippedReasons,
      perChannel: s.perChannel,
      actionsUsed: s.budget.spentActions,
      costUsd: s.budget.spentUsd,
      startedAt: s.startedAt,
      completedAt,
      durationMs: completedAt - s.startedAt
    }
    const repo = yield* CampaignRepo
    yield* repo.complete(ctx.tenant, s.spec!.campaignId, summary)
    // what the campaign held of the tenant's budget shrinks to what it spent
    if (s.tenantGrant !== null) {
      yield* (yield* TenantBudget).close(ctx.tenant, s.spec!.campaignId, { actions: s.budget.spentActions, usd: s.budget.spentUsd })
    }
    ctx.send(topicOf(s.spec!.campaignId), Campaign.CampaignProgress, { campaignId: s.spec!.campaignId, counts: s.counts })
    ctx.send(topicOf(s.spec!.campaignId), Campaign.CampaignCompleted, { campaignId: s.spec!.campaignId, summary })
    return { ...s, status: "completed" as const, completedAt }
  })

/**
 * A contact's completion counted: its outcome, its channel, its budget settled, the pace
 * measured; null when there is nothing in flight to count it against (a repeat, or a
 * campaign no longer running).
 */
const countCompletion = (state: State, r: typeof Campaign.ContactCompleted.payload.Type, ctx: Actor.ActorContext): State | null => {
  if ((state.status !== "running" && state.status !== "paused") || state.counts.inProgress === 0) return null
  const c = state.counts
  const counts: Campaign.CampaignCounts = {
    ...c,
    inProgress: c.inProgress - 1,
    completed: c.completed + 1,
    reached: c.reached + (r.status === "reached" || r.status === "converted" ? 1 : 0),
    replied: c.replied + (CampaignControl.isAnswer(r.reason) ? 1 : 0),
    converted: c.converted + (r.status === "converted" ? 1 : 0),
    skipped: c.skipped + (r.status === "skipped" ? 1 : 0),
    failed: c.failed + (r.status === "failed" ? 1 : 0)
  }
  const skippedReasons =
    r.status === "skipped" && r.reason !== null
      ? { ...state.skippedReasons, [r.reason]: (state.skippedReasons[r.reason] ?? 0) + 1 }
      : state.skippedReasons
  const perChannel =
    r.channel === null
      ? state.perChannel
      : {
          ...state.perChannel,
          [r.channel]: {
            attempted: (state.perChannel[r.channel]?.attempted ?? 0) + 1,
            reached: (state.perChannel[r.channel]?.reached ?? 0) + (r.status === "reached" || r.status === "converted" ? 1 : 0)
          }
        }
  // settle: the contact's reservation is released, what it spent is charged
  const budget = CampaignBudget.settle(state.budget, state.allowance, r.spent)
  const pace = CampaignPace.completed(state.pace, ctx.envelope.ts, r.dispatchedAt, state.window)
  return CampaignControl.record({ ...state, counts, skippedReasons, perChannel, budget, pace }, r)
}

const requestPlan = (s: State, ctx: Actor.ActorContext): State => {
  const spec = s.spec!
  ctx.send(Address.agent("planner"), Campaign.PlanRequested, {
    campaignId: spec.campaignId,
    goal: spec.goal,
    audience: spec.audience,
    channels: spec.channels,
    targetCount: spec.targetCount,
    maxCostUsd: spec.budget.maxCostUsd * CampaignBudget.PLANNING_SHARE
  })
  return { ...s, status: "planning" }
}

/**
 * Why a failed message means the campaign's plan will not come, or null: the planner
 * failed on its request (the notice of a dead-lettered `PlanRequested`, from the agent or
 * from a request that ran out of deliveries), or this actor failed on the plan itself.
 */
const planLost = (m: Message.Decoded, error: unknown): string | null => {
  if (Message.is(DeadLetter.DeadLettered)(m)) {
    return m.payload.originalType === Campaign.PlanRequested.type ? `planning-failed:${m.payload.error._tag}` : null
  }
  if (Message.is(Campaign.PlanReady)(m)) return `planning-failed:${(error as { _tag?: string })._tag ?? "unknown"}`
  return null
}

const flow: CampaignControl.Flow<unknown, ContactRepo | CampaignRepo | TenantBudget> = { dispatch, complete, requestPlan }

/** The campaign actor definition. */
export const CampaignActor = Actor.make({
  type: "campaign",
  accepts: [
    Campaign.StartCampaign,
    Campaign.PlanReady,
    Campaign.ContactCompleted,
    ...Control.commands,
    Dispatch.AdjustmentProposed,
    Dispatch.ContactReplied,
    PlannerProtocol.ControlRequested
  ],
  state: State,
  initial: (): State => ({
    status: "new",
    spec: null,
    plan: null,
    limit: 0,
    cursor: null,
    exhausted: false,
    counts: emptyCounts,
    skippedReasons: {},
    perChannel: {},
    startedAt: 0,
    completedAt: null,
    resumeTo: null,
    approvals: [],
    escalations: {},
    window: WINDOW,
    pace: CampaignPace.initial,
    stats: CampaignControl.emptyStats,
    reviewedAt: 0,
    cancelled: null,
    agentActions: {},
    priorities: [],
    budget: CampaignBudget.empty,
    allowance: null,
    tenantGrant: null
  }),
  handle: Effect.fnUntraced(function* (state: State, m: Message.Decoded, ctx: Actor.ActorContext) {
    if (Message.is(Campaign.StartCampaign)(m)) {
      // a repeated start of the same campaign changes nothing
      if (state.status !== "new") return state
      const spec = m.payload
      const repo = yield* CampaignRepo
      yield* repo.start(ctx.tenant, { id: spec.campaignId, name: spec.name, goal: spec.goal, spec })
      ctx.send(topicOf(spec.campaignId), Campaign.CampaignStarted, {
        campaignId: spec.campaignId,
        name: spec.name,
        goal: spec.goal,
        targetCount: spec.targetCount,
        budget: spec.budget
      })
      return requestPlan({ ...state, spec, startedAt: m.envelope.ts }, ctx)
    }
    if (Message.is(Campaign.PlanReady)(m)) {
      if (state.status !== "planning" || state.spec === null) return state
      const plan = m.payload.plan
      ctx.send(topicOf(state.spec.campaignId), Campaign.CampaignPlanned, { campaignId: state.spec.campaignId, plan })
      const limit = Math.min(plan.limit, state.spec.targetCount, state.spec.budget.maxActions)
      const budget = CampaignBudget.charge(state.budget, m.payload.cost?.usd ?? 0)
      return yield* CampaignControl.onPlan({ ...state, plan, limit, budget, allowance: CampaignBudget.allowanceOf(plan) }, ctx, flow)
    }
    if (Message.is(Campaign.ContactCompleted)(m)) {
      const counted = countCompletion(state, m.payload, ctx)
      if (counted === null) return state
      const next = CampaignControl.maybeReview(yield* dispatch(counted, ctx), ctx)
      const every = Math.max(1, Math.floor(state.limit / 50))
      if (next.status === "running" && counted.counts.completed % every === 0) {
        ctx.send(topicOf(state.spec!.campaignId), Campaign.CampaignProgress, { campaignId: state.spec!.campaignId, counts: next.counts })
      }
      return next
    }
    if (state.spec === null) return state
    if (Message.is(Control.PauseCampaign)(m)) return CampaignControl.pause(state, ctx, m.payload.reason, m.payload.by)
    if (Message.is(Control.ResumeCampaign)(m)) return yield* CampaignControl.resume(state, ctx, m.payload.by, flow)
    if (Message.is(Control.CancelCampaign)(m)) return yield* CampaignControl.cancel(state, ctx, m.payload.reason, m.payload.by, flow)
    if (Message.is(Control.EditCampaign)(m)) return yield* CampaignControl.edit(state, ctx, m.payload, flow)
    if (Message.is(Control.ApproveAction)(m)) return yield* CampaignControl.approve(state, ctx, m.payload.approvalId, m.payload.by, flow)
    if (Message.is(Control.RejectAction)(m)) return yield* CampaignControl.reject(state, ctx, m.payload, flow)
    if (Message.is(Dispatch.AdjustmentProposed)(m)) return CampaignControl.onAdjustments(state, ctx, m.payload)
    if (Message.is(Dispatch.ContactReplied)(m)) {
      // an answer after the contact's engagement ended (even after the campaign completed)
      const next = CampaignControl.lateAnswer(state)
      ctx.send(topicOf(state.spec.campaignId), Campaign.CampaignProgress, { campaignId: state.spec.campaignId, counts: next.counts })
      return next
    }
    if (Message.is(PlannerProtocol.ControlRequested)(m)) return CampaignControl.onControlRequest(state, ctx, m.payload)
    return state
  }),
  onDeadLetter: (state: State, m: Message.Decoded, error: unknown, ctx: Actor.ActorContext) => {
    // a completion this actor could not handle (what it does next failed past its retries
    // and the outage window: storage down for minutes) is still counted, and the campaign
    // pauses with the reason: a person resumes it once the cause is gone (nothing else
    // would wake it: its contacts may all have finished)
    if (Message.is(Campaign.ContactCompleted)(m)) {
      const counted = countCompletion(state, m.payload, ctx)
      if (counted === null) return Effect.succeed(state)
      return Effect.succeed(CampaignControl.pause(counted, ctx, `stalled: ${RuntimeErrors.describe(error).slice(0, 200)}`, "runtime"))
    }
    const reason = planLost(m, error)
    return reason === null ? Effect.succeed(state) : CampaignControl.planningFailed(state, ctx, reason, flow)
  }
})
