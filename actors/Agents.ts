/**
 * The stateless agents of the campaign flow, each on its own work queue: planner (one
 * ReAct step per message, each streamed as an event), content (personalised drafts through
 * the output filter), executor (deliveries through `Channels`, idempotent by key), analyzer
 * (per-outcome analysis and the campaign rate watch), scheduler (wakes deferred contacts)
 * and call events (Vapi webhook outcomes, routed back to their contact). Model calls are
 * keyed by the message they answer, so a redelivered message never pays twice; each reply
 * carries what its model calls cost.
 */
import { Clock, Duration, Effect } from "effect"
import { Address, Campaign, Cost, Dispatch, Message, Planner as PlannerProtocol, Vapi } from "../protocols/index.js"
import { Agent } from "../runtime/index.js"
import { AttemptLedger } from "../storage/AttemptLedger.js"
import * as CampaignHealth from "./analysis/CampaignHealth.js"
import * as OutcomeAnalysis from "./analysis/OutcomeAnalysis.js"
import { topicOf } from "./CampaignActor.js"
import { Channels } from "./Channels.js"
import * as Content from "./content/Content.js"
import * as Planner from "./planner/Planner.js"

/** Most ReAct steps the planner takes before it must finish. */
export const MAX_PLAN_STEPS = Planner.MAX_PLAN_STEPS

/** Longest a scheduler message is held before it is handed on (bounds in-flight time). */
export const SCHEDULER_HOLD = Duration.minutes(10)

// A held deferral must not keep a draining process alive: its timer is unref'd, and the
// unacknowledged message is redelivered to another node after the ack wait.
const hold = (ms: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    timer.unref()
    return Effect.sync(() => clearTimeout(timer))
  })

/** Planner: one ReAct step per message; the plan goes to the campaign that asked. */
export const planner = Agent.make({
  name: "planner",
  accepts: [Campaign.PlanRequested, PlannerProtocol.PlanStepRequested],
  concurrency: 8,
  handle: Effect.fn("PlannerAgent.handle")(function* (m, ctx) {
    const loop = Message.is(PlannerProtocol.PlanStepRequested)(m)
      ? m.payload
      : Message.is(Campaign.PlanRequested)(m)
        ? { request: m.payload, replyTo: m.envelope.from as string, steps: [], cost: Cost.zero }
        : null
    if (loop === null) return
    const { request } = loop
    const r = yield* Planner.step(ctx.tenant, request, loop.steps, loop.cost)
    ctx.send(topicOf(request.campaignId), PlannerProtocol.PlannerStepRecorded, {
      campaignId: request.campaignId,
      step: r.step,
      maxSteps: Planner.MAX_PLAN_STEPS,
      cost: r.cost
    })
    if (r.plan !== null) {
      ctx.send(loop.replyTo as Address.Address, Campaign.PlanReady, { campaignId: request.campaignId, plan: r.plan, cost: r.cost })
    } else {
      ctx.send(ctx.self, PlannerProtocol.PlanStepRequested, { ...loop, steps: [...loop.steps, r.step], cost: r.cost })
    }
  })
})

/** Content: a personalised, filtered message for one contact and channel. */
export const content = Agent.make({
  name: "content",
  accepts: [Campaign.DraftRequested],
  concurrency: 64,
  handle: Effect.fn("ContentAgent.handle")(function* (m, ctx) {
    if (!Message.is(Campaign.DraftRequested)(m)) return
    const { campaignId, contact, channel, brief } = m.payload
    const d = yield* Content.draft(ctx.tenant, { contact, channel, brief }, `${ctx.tenant}/draft/${m.envelope.id}`)
    ctx.reply(Campaign.Drafted, {
      campaignId,
      contactId: contact.id,
      channel,
      subject: d.subject,
      body: d.body,
      model: d.model,
      filter: { verdict: d.verdict, reasons: d.reasons },
      cost: d.cost
    })
  })
})

/** Executor: delivers over a channel, at most once per idempotency key. */
export const executor = Agent.make({
  name: "executor",
  accepts: [Campaign.DeliverRequested],
  concurrency: 64,
  handle: Effect.fn("ExecutorAgent.handle")(function* (m, ctx) {
    if (!Message.is(Campaign.DeliverRequested)(m)) return
    const r = m.payload
    const channels = yield* Channels
    const result = yield* channels.deliver({ tenant: ctx.tenant, ...r })
    const ids = { campaignId: r.campaignId, contactId: r.contactId, channel: r.channel, idempotencyKey: r.idempotencyKey }
    switch (result._tag) {
      case "Delivered":
        return ctx.reply(Campaign.Delivered, {
          ...ids,
          outcome: result.outcome,
          detail: result.duplicate ? `${result.detail} (recorded earlier; not sent again)` : result.detail,
          durationSec: result.durationSec,
          transcript: result.transcript
        })
      case "Pending":
        return ctx.reply(Dispatch.DeliveryPending, { ...ids, providerRef: result.providerRef, detail: result.detail })
      case "Deferred":
        return ctx.reply(Dispatch.DeliveryDeferred, { ...ids, reason: result.reason, retryAt: result.retryAt })
    }
  })
})

/** Analyzer: per-outcome analysis, and the campaign-level rate watch. */
export const analyzer = Agent.make({
  name: "analyzer",
  accepts: [Campaign.AnalyseRequested, Dispatch.CampaignReviewRequested],
  concurrency: 64,
  handle: Effect.fn("AnalyzerAgent.handle")(function* (m, ctx) {
    if (Message.is(Dispatch.CampaignReviewRequested)(m)) {
      const r = m.payload
      const adjustments = CampaignHealth.review(r.stats, r.channelSequence, r.window)
      return ctx.reply(Dispatch.AdjustmentProposed, { campaignId: r.campaignId, basedOn: r.stats.completed, adjustments, cost: Cost.zero })
    }
    if (!Message.is(Campaign.AnalyseRequested)(m)) return
    const r = m.payload
    const a = yield* OutcomeAnalysis.analyse(
      ctx.tenant,
      { channel: r.channel, outcome: r.outcome, transcript: r.transcript, leadScore: r.leadScore },
      `${ctx.tenant}/analyse/${m.envelope.id}`
    )
    ctx.reply(Campaign.Analysed, {
      campaignId: r.campaignId,
      contactId: r.contactId,
      sentiment: a.sentiment,
      buyingSignals: a.buyingSignals,
      objections: a.objections,
      nextBestAction: a.nextBestAction,
      leadStatus: a.leadStatus,
      model: a.model,
      cost: a.cost
    })
  })
})

/**
 * Scheduler: holds a deferral until its time, then wakes the contact. The message stays
 * unacknowledged while held (in-progress acks keep it), so a crash redelivers it and the
 * wait resumes; a long wait is handed on in hops of `SCHEDULER_HOLD`. Durable timers in the
 * runtime replace this agent without changing the messages.
 */
export const scheduler = Agent.make({
  name: "scheduler",
  accepts: [Dispatch.DeferRequested],
  concurrency: 1024,
  handle: Effect.fn("SchedulerAgent.handle")(function* (m, ctx) {
    if (!Message.is(Dispatch.DeferRequested)(m)) return
    const r = m.payload
    const now = yield* Clock.currentTimeMillis
    const wait = r.wakeAt - now
    if (wait > Duration.toMillis(SCHEDULER_HOLD)) {
      yield* hold(Duration.toMillis(SCHEDULER_HOLD))
      return ctx.send(ctx.self, Dispatch.DeferRequested, r)
    }
    if (wait > 0) yield* hold(wait)
    ctx.send(Address.actor("contact", r.contactId), Dispatch.StepDue, { campaignId: r.campaignId, contactId: r.contactId, reason: r.reason, token: r.token })
  })
})

const contactOfKey = (key: string): string | null => key.split("/")[2] ?? null

/**
 * Call events: Vapi webhook outcomes (published by the gateway) go back to the contact
 * whose call it was (from the call's metadata, else from the attempt ledger by call id);
 * the end-of-call report also finishes the attempt (freeing its concurrency slot).
 */
export const callEvents = Agent.make({
  name: "call-events",
  accepts: [Vapi.CallEnded, Vapi.CallStatusChanged],
  concurrency: 64,
  handle: Effect.fn("CallEventsAgent.handle")(function* (m, ctx) {
    if (!Message.is(Vapi.CallEnded)(m) && !Message.is(Vapi.CallStatusChanged)(m)) return
    const p = m.payload as typeof Vapi.CallEnded.payload.Type | typeof Vapi.CallStatusChanged.payload.Type
    const ledger = yield* AttemptLedger
    const attempt = yield* ledger.byProviderRef(ctx.tenant, p.callId)
    const key = p.idempotencyKey ?? (attempt._tag === "Some" ? attempt.value.idempotencyKey : null)
    const contactId = p.contactId ?? (key !== null ? contactOfKey(key) : null)
    if (contactId === null || key === null) {
      yield* Effect.logWarning(`call ${p.callId}: no metadata and no recorded attempt; event dropped`)
      return
    }
    if (Message.is(Vapi.CallEnded)(m)) {
      const e = m.payload
      yield* ledger.finish(ctx.tenant, key, {
        status: "done",
        outcome: e.endedReason,
        detail: e.summary ?? e.endedReason,
        providerRef: e.callId,
        result: { durationSec: e.durationSec, transcript: e.transcript }
      })
      return ctx.send(Address.actor("contact", contactId), Vapi.CallEnded, { ...e, contactId, idempotencyKey: key })
    }
    if (Message.is(Vapi.CallStatusChanged)(m)) {
      ctx.send(Address.actor("contact", contactId), Vapi.CallStatusChanged, { ...m.payload, contactId, idempotencyKey: key })
    }
  })
})

/** All agents of the campaign flow. */
export const all = [planner, content, executor, analyzer, scheduler, callEvents] as const
