/**
 * The planner's ReAct loop, one step per call of `step`: the model (routed as a planning
 * task) sees the goal, the campaign's bounds, the action set and the steps so far, and
 * answers a typed `Decision`; the action runs (a read, or a CRM write once per step), or
 * is proposed, or is a workflow-control request for the campaign actor that waits for a
 * person's confirmation; and the step is recorded. At `finish`, or when the step budget is
 * spent, `step` builds the plan: an audience never wider than asked, channels within those
 * enabled, touches, the content brief, and every approval the plan needs.
 */
import { Clock, Effect } from "effect"
import type { Campaign, Planner as PlannerProtocol } from "../../protocols/index.js"
import * as Cost from "../../protocols/Cost.js"
import type { TenantId } from "../../protocols/Ids.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import * as Risk from "../guardrails/Risk.js"
import { Llm } from "../llm/Llm.js"
import * as Task from "../llm/Task.js"
import * as Offline from "../OfflineModel.js"
import { Decision, type Finish, info, names } from "./Actions.js"
import * as ActionRunner from "./ActionRunner.js"

/** Most ReAct steps the planner takes; the last one always finishes. */
export const MAX_PLAN_STEPS = 8

const catalogue = names.map((n) => `- ${n} (${info[n].category}, ${info[n].risk}): ${info[n].description}`).join("\n")

/** The planning task: one ReAct decision. */
export const planStep = Task.make<Offline.PlannerInput, Decision>({
  purpose: "plan-step",
  kind: "planning",
  output: Decision,
  system: [
    "You plan outbound sales campaigns for a CRM, one ReAct step at a time: think, then choose exactly one action, or finish with the plan.",
    "Stay inside the campaign's audience filter and enabled channels; never plan more contacts than the target.",
    "Read-only actions run at once and return an observation; CRM writes (create_task, log_activity, schedule_meeting) run at once;",
    "outreach actions are taken into the plan and run at dispatch; workflow-control actions wait for a person's confirmation.",
    "Finish before the step budget is spent.",
    `Actions:\n${catalogue}`
  ].join("\n"),
  prompt: (i) =>
    [
      `Goal: ${i.goal}`,
      `Audience filter (never widen): ${JSON.stringify(i.audience)}`,
      `Enabled channels: ${i.channels.join(", ")}; target contacts: ${i.targetCount}; steps left: ${i.maxSteps - i.steps.length}`,
      "Steps so far:",
      ...i.steps.map((s, n) => `${n + 1}. ${s.action} [${s.status}] → ${JSON.stringify(s.data)}`),
      "Your next decision:"
    ].join("\n"),
  offline: Offline.planDecision,
  maxTokens: 800,
  temperature: 0
})

/** The outcome of one step. */
export interface StepOutcome {
  readonly step: PlannerProtocol.PlanStep
  readonly cost: Cost.Cost
  /** The plan, when this step finished. */
  readonly plan: Campaign.Plan | null
  /** A workflow-control action for the campaign actor (it waits there for approval), when this step took one. */
  readonly control: typeof PlannerProtocol.ControlRequested.payload.Type | null
  /**
   * The step's answer came from a deterministic model (the offline one), computed or
   * replayed from the call ledger: running the step again answers the same.
   */
  readonly deterministic: boolean
}

/**
 * Runs `self` (one planning run: the steps one message takes) over one snapshot of audience
 * counts: a count asked again for the same filter (by `count` or with a `survey`) answers
 * from the first read. The loop counts its audience at the query, at each outreach proposal
 * and at the finish, one Postgres round trip each on the way to a campaign's first contact;
 * and the plan's figures then agree with what its steps observed.
 */
export const withCountSnapshot = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(ContactRepo, (repo) => {
    const counts = new Map<string, number>()
    const keyOf = (tenant: TenantId, f: Campaign.AudienceFilter) =>
      JSON.stringify([tenant, f.segments, f.industries, f.regions, f.titleKeywords, f.minLeadScore])
    const count = (tenant: TenantId, f: Campaign.AudienceFilter) => {
      const key = keyOf(tenant, f)
      const hit = counts.get(key)
      return hit !== undefined ? Effect.succeed(hit) : Effect.tap(repo.count(tenant, f), (n) => Effect.sync(() => counts.set(key, n)))
    }
    // a survey reads its count with its rows: the first count of a filter, kept as a count's
    const survey = (tenant: TenantId, f: Campaign.AudienceFilter, top: number) => {
      const key = keyOf(tenant, f)
      const hit = counts.get(key)
      return Effect.map(repo.survey(tenant, f, top), (s) => {
        if (hit !== undefined) return { ...s, matching: hit }
        counts.set(key, s.matching)
        return s
      })
    }
    return Effect.provideService(self, ContactRepo, { ...repo, count, survey })
  })

/** The last query's audience, or the one the goal implies. */
const lastFilter = (req: typeof Campaign.PlanRequested.payload.Type, steps: ReadonlyArray<PlannerProtocol.PlanStep>) => {
  const q = [...steps].reverse().find((s) => s.action === "query_contacts" && s.status === "observed")
  return (q?.data as { filter?: Campaign.AudienceFilter } | undefined)?.filter ?? Offline.inferFilter(req.goal, req.audience)
}

/** Builds the plan from a finish decision and the steps taken. */
export const buildPlan = Effect.fn("Planner.buildPlan")(function* (
  tenant: TenantId,
  req: typeof Campaign.PlanRequested.payload.Type,
  steps: ReadonlyArray<PlannerProtocol.PlanStep>,
  finish: Finish,
  model: string
) {
  const contacts = yield* ContactRepo
  const audience = ActionRunner.narrow(req.audience, finish.filter)
  const matching = yield* contacts.count(tenant, audience)
  const limit = Math.min(matching, req.targetCount)
  const chosen = finish.channels.filter((c, i) => req.channels.includes(c) && finish.channels.indexOf(c) === i)
  const channelSequence = (chosen.length > 0 ? chosen : [...req.channels]) as [Campaign.Channel, ...Array<Campaign.Channel>]
  const maxTouches = Math.max(1, Math.min(finish.maxTouches, channelSequence.length))
  const confirmations = steps.flatMap((s) =>
    s.status === "needs-confirmation" ? ((s.data as { approvals?: Array<Campaign.ApprovalNeed> }).approvals ?? []) : []
  )
  const volume = Risk.assess({ campaignId: req.campaignId, contacts: limit, channels: channelSequence, maxTouches })
  const approvals = [...volume, ...confirmations].filter((a, i, all) => all.findIndex((b) => b.approvalId === a.approvalId) === i)
  return {
    audience,
    limit,
    channelSequence,
    brief: { goal: req.goal, tone: finish.tone, valueProposition: finish.valueProposition, callToAction: finish.callToAction },
    reasoning: steps.map((s) => ({ thought: s.thought, action: s.action, observation: s.observation })),
    model,
    matching,
    ...(maxTouches > 1 ? { sequence: { maxTouches, gapMs: Math.round(finish.gapHours * 3_600_000) } } : {}),
    ...(approvals.length > 0 ? { approvals } : {})
  } satisfies Campaign.Plan
})

/**
 * Takes the next step of the loop for campaign request `req`, given the steps so far; `at`
 * is when the step was asked for (default: now), the time its CRM writes count from.
 */
export const step = Effect.fn("Planner.step")(function* (
  tenant: TenantId,
  req: typeof Campaign.PlanRequested.payload.Type,
  steps: ReadonlyArray<PlannerProtocol.PlanStep>,
  costSoFar: Cost.Cost,
  at?: number
) {
  const llm = yield* Llm
  const index = steps.length
  const input: Offline.PlannerInput = {
    goal: req.goal,
    audience: req.audience,
    channels: req.channels,
    targetCount: req.targetCount,
    maxSteps: MAX_PLAN_STEPS,
    steps: steps.map((s) => ({ action: s.action, status: s.status, data: s.data }))
  }
  const key = ActionRunner.stepKey(tenant, req.campaignId, index)
  const answer = yield* llm.run(planStep, input, { tenant, callKey: key })
  const cost = Cost.add(costSoFar, answer.cost)
  const deterministic = llm.models.some((m) => m.id === answer.model && m.capabilities.deterministic)
  const { thought, next } = answer.value
  const forced = next._tag !== "finish" && index >= MAX_PLAN_STEPS - 1
  if (next._tag === "finish" || forced) {
    const finish: Finish =
      next._tag === "finish"
        ? next
        : { _tag: "finish", filter: lastFilter(req, steps), channels: req.channels, maxTouches: 1, gapHours: 48, ...Offline.brief(req.goal) }
    const record: PlannerProtocol.PlanStep = {
      step: index,
      thought: forced ? `${thought} (step budget spent: finishing)` : thought,
      action: "finish",
      input: { filter: finish.filter, channels: finish.channels, maxTouches: finish.maxTouches },
      observation: "",
      data: {},
      status: "finished",
      model: answer.model
    }
    const plan = yield* buildPlan(tenant, req, steps, finish, answer.model)
    const done = { ...record, observation: `plan for ${plan.limit} of ${plan.matching} matching contacts, ${plan.channelSequence.join(" → ")}${plan.approvals ? `, ${plan.approvals.length} approval(s) needed` : ""}` }
    return {
      step: done,
      cost,
      plan: { ...plan, reasoning: [...plan.reasoning, { thought: done.thought, action: "finish", observation: done.observation }] },
      control: null,
      deterministic
    } satisfies StepOutcome
  }
  const constraints = { campaignId: req.campaignId, audience: req.audience, channels: req.channels, targetCount: req.targetCount }
  const r = yield* ActionRunner.run(tenant, constraints, next, { index, key, at: at ?? (yield* Clock.currentTimeMillis) })
  const { _tag, ...actionInput } = next
  const record: PlannerProtocol.PlanStep = {
    step: index,
    thought,
    action: _tag,
    input: actionInput,
    observation: r.observation,
    data: r.data,
    status: r.status,
    model: answer.model
  }
  const control =
    next._tag === "pause_campaign" || next._tag === "adjust_priority" || next._tag === "escalate"
      ? {
          campaignId: req.campaignId,
          approvalId: ActionRunner.approvalIdOf(req.campaignId, index, next._tag),
          step: index,
          action: next,
          reason: thought
        }
      : null
  return { step: record, cost, plan: null, control, deterministic } satisfies StepOutcome
})
