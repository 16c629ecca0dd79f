/**
 * The four stateless agents of the campaign flow, each on its own work queue:
 * planner (ReAct loop over the action set), content (personalised drafts), executor
 * (deliveries through `Channels`, idempotent by key) and analyzer (outcome analysis).
 * Each replies to the actor that asked, over NATS.
 */
import { Effect } from "effect"
import { Campaign, Message } from "../protocols/index.js"
import { Agent } from "../runtime/index.js"
import { ContactRepo } from "../storage/ContactRepo.js"
import { Channels } from "./Channels.js"
import { Model } from "./Model.js"
import type { Observation } from "./OfflineModel.js"

/** Most ReAct steps the planner takes before it must finish. */
export const MAX_PLAN_STEPS = 6

/** Planner: thought → action → observation until the model finishes with a plan. */
export const planner = Agent.make({
  name: "planner",
  accepts: [Campaign.PlanRequested],
  concurrency: 8,
  handle: Effect.fn("PlannerAgent.handle")(function* (m, ctx) {
    if (!Message.is(Campaign.PlanRequested)(m)) return
    const req = m.payload
    const model = yield* Model
    const contacts = yield* ContactRepo
    const observations: Array<Observation> = []
    const reasoning: Array<Campaign.ReasoningStep> = []
    for (let step = 0; step < MAX_PLAN_STEPS; step++) {
      const decision = yield* model.nextPlanStep(req.goal, req.audience, req.channels, req.targetCount, observations)
      if (decision._tag === "Finish" || step === MAX_PLAN_STEPS - 1) {
        const last = observations[observations.length - 1]
        const filter = decision.filter
        const matching = last?.matching ?? 0
        const channels = decision._tag === "Finish" ? decision.channels : req.channels
        reasoning.push({ thought: decision.thought, action: "finish", observation: `plan for ${Math.min(matching, req.targetCount)} contacts` })
        ctx.reply(Campaign.PlanReady, {
          campaignId: req.campaignId,
          plan: {
            audience: filter,
            limit: Math.min(matching, req.targetCount),
            channelSequence: [channels[0] ?? req.channels[0], ...channels.slice(1)],
            brief: yield* model.brief(req.goal),
            reasoning,
            model: model.name
          }
        })
        return
      }
      const matching = yield* contacts.count(ctx.tenant, decision.filter)
      observations.push({ filter: decision.filter, matching })
      reasoning.push({
        thought: decision.thought,
        action: `${decision.action}(${JSON.stringify(decision.filter)})`,
        observation: `${matching} contacts match`
      })
    }
  })
})

/** Content: a personalised message for one contact and channel. */
export const content = Agent.make({
  name: "content",
  accepts: [Campaign.DraftRequested],
  concurrency: 64,
  handle: Effect.fn("ContentAgent.handle")(function* (m, ctx) {
    if (!Message.is(Campaign.DraftRequested)(m)) return
    const { campaignId, contact, channel, brief } = m.payload
    const model = yield* Model
    const d = yield* model.draft(contact, channel, brief)
    ctx.reply(Campaign.Drafted, { campaignId, contactId: contact.id, channel, subject: d.subject, body: d.body, model: d.model })
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
    const result = yield* channels.deliver({
      tenant: ctx.tenant,
      campaignId: r.campaignId,
      contactId: r.contactId,
      channel: r.channel,
      to: r.to,
      subject: r.subject,
      body: r.body,
      idempotencyKey: r.idempotencyKey,
      leadScore: r.leadScore
    })
    ctx.reply(Campaign.Delivered, {
      campaignId: r.campaignId,
      contactId: r.contactId,
      channel: r.channel,
      idempotencyKey: r.idempotencyKey,
      outcome: result.outcome,
      detail: result.duplicate ? `${result.detail} (recorded earlier; not sent again)` : result.detail,
      durationSec: result.durationSec,
      transcript: result.transcript
    })
  })
})

/** Analyzer: sentiment, buying signals, next best action and lead status of an outcome. */
export const analyzer = Agent.make({
  name: "analyzer",
  accepts: [Campaign.AnalyseRequested],
  concurrency: 64,
  handle: Effect.fn("AnalyzerAgent.handle")(function* (m, ctx) {
    if (!Message.is(Campaign.AnalyseRequested)(m)) return
    const r = m.payload
    const model = yield* Model
    const a = yield* model.analyse({ outcome: r.outcome, transcript: r.transcript, leadScore: r.leadScore })
    ctx.reply(Campaign.Analysed, { campaignId: r.campaignId, contactId: r.contactId, ...a })
  })
})

/** All agents of the campaign flow. */
export const all = [planner, content, executor, analyzer] as const
