/**
 * The campaign actor's handling of the planner's workflow-control actions, as functions over
 * its state: a request is asked for approval once (not again when the plan arrives with
 * it) and gates the plan; a pause approved while the plan is still being made holds the
 * campaign when it arrives; a rejected pause is dropped and the plan runs; a request that
 * arrives after the plan (a redelivery after a failover) is not asked twice; an approved
 * priority change moves the contact-lock priority of the contacts it matches.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { CampaignActor, CampaignControl } from "../../actors/index.js"
import type { Planner as PlannerProtocol } from "../../protocols/index.js"
import { Address, Campaign, Ids } from "../../protocols/index.js"
import { HandlerFailed } from "../../runtime/Errors.js"
import type { Actor } from "../../runtime/index.js"

const campaignId = Ids.CampaignId.make("cmp-ctl")

/** A context that records what the handler sends. */
const context = () => {
  const sent: Array<{ type: string; payload: any }> = []
  const ctx: Actor.ActorContext = {
    self: Address.actor("campaign", campaignId),
    id: campaignId,
    tenant: Ids.TenantId.make("ctl"),
    envelope: { id: "m" as never, type: "x", v: 1, tenant: Ids.TenantId.make("ctl"), from: Address.ext("t"), to: Address.ext("t"), correlationId: "m", causationId: null, ts: 0, trace: { traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` }, payload: null },
    send: (_to, def, payload) => void sent.push({ type: def.type, payload })
  }
  return { ctx, sent, types: () => sent.map((s) => s.type) }
}

/** A flow that records dispatches instead of engaging contacts. */
const flow = {
  dispatch: (s: CampaignActor.State) => Effect.succeed<CampaignActor.State>({ ...s, counts: { ...s.counts, dispatched: s.counts.dispatched + 1 } }),
  complete: (s: CampaignActor.State) => Effect.succeed<CampaignActor.State>({ ...s, status: "completed" }),
  requestPlan: (s: CampaignActor.State): CampaignActor.State => ({ ...s, status: "planning" })
}

const spec: Campaign.StartPayload = {
  campaignId,
  name: "ctl",
  goal: "g",
  audience: {},
  channels: ["email"],
  targetCount: 10,
  budget: { maxActions: 10, maxCostUsd: 1 }
}
const planning = (): CampaignActor.State => ({ ...CampaignActor.CampaignActor.initial(campaignId, Ids.TenantId.make("ctl")), status: "planning", spec })

const request = (step: number, action: PlannerProtocol.WorkflowAction): typeof PlannerProtocol.ControlRequested.payload.Type => ({
  campaignId,
  approvalId: `${campaignId}-step${step}-${action._tag}`,
  step,
  action,
  reason: "the goal asks for it"
})
const pauseReq = request(1, { _tag: "pause_campaign", reason: "hold other outreach" })
const needOf = (r: typeof pauseReq): Campaign.ApprovalNeed => ({ approvalId: r.approvalId, action: r.action._tag, reason: "r", details: {} })
const plan = (approvals: ReadonlyArray<Campaign.ApprovalNeed>): Campaign.Plan => ({
  audience: {},
  limit: 10,
  channelSequence: ["email"],
  brief: { goal: "g", tone: "t", valueProposition: "v", callToAction: "c" },
  reasoning: [],
  model: "offline-v1",
  ...(approvals.length > 0 ? { approvals } : {})
})
const contact = (over: Partial<Campaign.ContactSnapshot> = {}): Campaign.ContactSnapshot =>
  ({ id: Ids.ContactId.make("ct-1"), name: "A B", title: "CTO", company: "Acme", industry: "SaaS", segment: "enterprise", region: "Europe", leadScore: 80, ...over }) as Campaign.ContactSnapshot

describe("CampaignControl: the planner's workflow actions", () => {
  it.effect("a pause is asked once, gates the plan, and once approved holds the campaign when the plan arrives", () =>
    Effect.gen(function* () {
      const { ctx, types } = context()
      let s = CampaignControl.onControlRequest(planning(), ctx, pauseReq)
      expect(types()).toEqual(["event.approval-requested"])
      expect(s.approvals.map((a) => a.approvalId)).toEqual([pauseReq.approvalId])
      expect(CampaignControl.onControlRequest(s, ctx, pauseReq), "a repeat changes nothing").toBe(s)

      s = yield* CampaignControl.approve(s, ctx, pauseReq.approvalId, "user:alice", flow)
      expect(types()).toEqual(["event.approval-requested", "event.approval-decided"])
      expect(s.status, "still planning: the pause waits for the plan").toBe("planning")
      expect(s.agentActions[pauseReq.approvalId]).toMatchObject({ decision: "approved", applied: false, decidedBy: "user:alice" })

      s = yield* CampaignControl.onPlan({ ...s, plan: plan([needOf(pauseReq)]), limit: 10 }, ctx, flow)
      expect(types(), "the plan's copy of the approval is not asked again").toEqual([
        "event.approval-requested",
        "event.approval-decided",
        "event.campaign-state-changed"
      ])
      expect(s).toMatchObject({ status: "paused", resumeTo: "running", approvals: [] })
      expect(s.counts.dispatched, "nothing dispatched while paused").toBe(0)
      expect(s.agentActions[pauseReq.approvalId]!.applied).toBe(true)
      s = yield* CampaignControl.resume(s, ctx, "user:alice", flow)
      expect(s.status).toBe("running")
      expect(s.counts.dispatched).toBe(1)
    })
  )

  it.effect("a rejected pause is dropped and the plan runs; a rejected escalation cancels", () =>
    Effect.gen(function* () {
      const { ctx } = context()
      const waiting = yield* CampaignControl.onPlan(
        { ...CampaignControl.onControlRequest(planning(), ctx, pauseReq), plan: plan([needOf(pauseReq)]), limit: 10 },
        ctx,
        flow
      )
      expect(waiting.status).toBe("awaiting-approval")
      const ran = yield* CampaignControl.reject(waiting, ctx, { campaignId, approvalId: pauseReq.approvalId, by: "user:bob", reason: "no" }, flow)
      expect(ran).toMatchObject({ status: "running", approvals: [] })
      expect(ran.counts.dispatched).toBe(1)
      expect(ran.agentActions[pauseReq.approvalId]).toMatchObject({ decision: "rejected", applied: false })

      const esc = request(2, { _tag: "escalate", reason: "sign-off", to: "sales-manager" })
      const held = yield* CampaignControl.onPlan({ ...CampaignControl.onControlRequest(planning(), ctx, esc), plan: plan([needOf(esc)]), limit: 10 }, ctx, flow)
      const refused = yield* CampaignControl.reject(held, ctx, { campaignId, approvalId: esc.approvalId, by: "user:bob", reason: "no" }, flow)
      expect(refused.cancelled).toMatch(/rejected: no/)
      expect(refused.counts.dispatched).toBe(0)
    })
  )

  it.effect("a request arriving after its plan (a redelivery) is not asked twice and still applies when approved", () =>
    Effect.gen(function* () {
      const { ctx, types } = context()
      const waiting = yield* CampaignControl.onPlan({ ...planning(), plan: plan([needOf(pauseReq)]), limit: 10 }, ctx, flow)
      const s = CampaignControl.onControlRequest(waiting, ctx, pauseReq)
      expect(types()).toEqual(["event.approval-requested"])
      const approved = yield* CampaignControl.approve(s, ctx, pauseReq.approvalId, "user:alice", flow)
      expect(approved).toMatchObject({ status: "paused", resumeTo: "running" })
    })
  )

  it.effect("an approved priority change moves the lock priority of the contacts it matches", () =>
    Effect.gen(function* () {
      const { ctx, types } = context()
      const up = request(3, { _tag: "adjust_priority", filter: { segments: ["enterprise"] }, priority: "high" })
      const running: CampaignActor.State = { ...planning(), status: "running", plan: plan([]) }
      const s = yield* CampaignControl.approve(CampaignControl.onControlRequest(running, ctx, up), ctx, up.approvalId, "user:carol", flow)
      expect(types()).toEqual(["event.approval-requested", "event.approval-decided", "event.campaign-state-changed"])
      expect(CampaignControl.lockPolicyOf(s, contact())).toEqual({ lockPolicy: { onConflict: "skip", priority: 1, maxWaitMs: 3_600_000 } })
      expect(CampaignControl.lockPolicyOf(s, contact({ segment: "smb" })), "others keep the campaign's policy").toEqual({})
      const withPolicy: CampaignActor.State = { ...s, spec: { ...spec, lockPolicy: { onConflict: "preempt", priority: 5, maxWaitMs: 1000 } } }
      expect(CampaignControl.lockPolicyOf(withPolicy, contact()).lockPolicy?.priority).toBe(6)
    })
  )

  it.effect("a pause approved while the campaign is paused for its failed planning waits for the plan asked again", () =>
    Effect.gen(function* () {
      const { ctx, types } = context()
      let s = yield* CampaignControl.planningFailed(CampaignControl.onControlRequest(planning(), ctx, pauseReq), ctx, "planning-failed:HandlerFailed", flow)
      expect(s).toMatchObject({ status: "paused", resumeTo: "planning" })
      s = yield* CampaignControl.approve(s, ctx, pauseReq.approvalId, "user:alice", flow)
      expect(s, "approving does not send it to running without a plan").toMatchObject({ status: "paused", resumeTo: "planning" })
      expect(s.agentActions[pauseReq.approvalId]!.applied, "the pause waits for the plan").toBe(false)
      s = yield* CampaignControl.resume(s, ctx, "user:alice", flow)
      expect(s).toMatchObject({ status: "planning", resumeTo: null })
      s = yield* CampaignControl.onPlan({ ...s, plan: plan([needOf(pauseReq)]), limit: 10 }, ctx, flow)
      expect(s, "the approved pause holds the campaign once the plan is there").toMatchObject({ status: "paused", resumeTo: "running" })
      expect(types().filter((t) => t === "event.campaign-state-changed")).toHaveLength(3)
    })
  )

  it.effect("a completion the campaign could not handle past its retries is still counted, and the campaign pauses with the reason", () =>
    Effect.gen(function* () {
      const { ctx, sent } = context()
      const running: CampaignActor.State = {
        ...planning(),
        status: "running",
        plan: plan([]),
        limit: 10,
        counts: { targeted: 2, dispatched: 2, inProgress: 2, completed: 0, reached: 0, replied: 0, converted: 0, skipped: 0, failed: 0 }
      }
      const report = { campaignId, contactId: Ids.ContactId.make("ct-1"), status: "reached" as const, reason: null, channel: "email" as const }
      const m = { envelope: ctx.envelope, type: Campaign.ContactCompleted.type, payload: report }
      const failure = new HandlerFailed({ receiver: "actor:campaign:cmp-ctl", messageType: m.type, attempts: 5, message: "ContactRepo.window: Failed to acquire connection" })
      const s = yield* CampaignActor.CampaignActor.onDeadLetter!(running, m, failure, ctx) as Effect.Effect<CampaignActor.State>
      expect(s.counts).toMatchObject({ completed: 1, reached: 1, inProgress: 1 })
      expect(s).toMatchObject({ status: "paused", resumeTo: "running" })
      expect(sent.find((x) => x.type === "event.campaign-state-changed")?.payload).toMatchObject({
        state: "paused",
        reason: "stalled: ContactRepo.window: Failed to acquire connection",
        by: "runtime"
      })
      // resumed, it goes on from there
      const resumed = yield* CampaignControl.resume(s, ctx, "user:ops", flow)
      expect(resumed.status).toBe("running")
      expect(resumed.counts.completed).toBe(1)
    })
  )

  it.effect("a campaign cancelled while its plan was being made completes when planning fails; one paused for failed planning completes when cancelled", () =>
    Effect.gen(function* () {
      const { ctx } = context()
      const cancelledFirst = yield* CampaignControl.cancel(planning(), ctx, "not now", "user:ops", flow)
      expect(cancelledFirst.status, "still waiting for its plan").toBe("planning")
      expect((yield* CampaignControl.planningFailed(cancelledFirst, ctx, "planning-failed:HandlerFailed", flow)).status).toBe("completed")

      const pausedFirst = yield* CampaignControl.planningFailed(planning(), ctx, "planning-failed:HandlerFailed", flow)
      expect(pausedFirst).toMatchObject({ status: "paused", resumeTo: "planning" })
      expect((yield* CampaignControl.cancel(pausedFirst, ctx, "no plan, no campaign", "user:ops", flow)).status).toBe("completed")
    })
  )
})
