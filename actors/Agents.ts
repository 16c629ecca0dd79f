/**
 * The stateless agents of the campaign flow, each on its own work queue: planner (one
 * ReAct step per message, each streamed as an event; its CRM writes audited as made for
 * the campaign via `planner` under the message's trace; its workflow-control actions sent
 * to the campaign actor, where they wait for approval), content (personalised drafts through
 * the output filter), executor (deliveries through `Channels`, idempotent by key), analyzer
 * (per-outcome analysis and the campaign rate watch), scheduler (wakes deferred contacts)
 * and call events (Vapi webhook outcomes, routed back to their contact). Model calls are
 * keyed by the message they answer, so a redelivered message never pays twice; each reply
 * carries what its model calls cost.
 */
import { Clock, Config, type ConfigProvider, Effect } from "effect"
import { Address, Campaign, Cost, Dispatch, Message, Planner as PlannerProtocol, Vapi } from "../protocols/index.js"
import { Agent } from "../runtime/index.js"
import { AttemptLedger } from "../storage/AttemptLedger.js"
import * as Tenancy from "../storage/Tenancy.js"
import * as CampaignHealth from "./analysis/CampaignHealth.js"
import * as OutcomeAnalysis from "./analysis/OutcomeAnalysis.js"
import * as Llm from "./llm/Llm.js"
import { topicOf } from "./CampaignActor.js"
import * as ChannelPrices from "./channels/ChannelPrices.js"
import { Channels } from "./Channels.js"
import * as Content from "./content/Content.js"
import * as Planner from "./planner/Planner.js"

/** Most ReAct steps the planner takes before it must finish. */
export const MAX_PLAN_STEPS = Planner.MAX_PLAN_STEPS

/**
 * Planner: ReAct steps; the plan goes to the campaign that asked. A step answered by a
 * model that may answer otherwise next time ends the message: the next step is a message of
 * its own (a durable checkpoint between slow, paid calls; a redelivery replays recorded
 * answers from the call ledger). Steps answered by a deterministic model (the offline one,
 * a few milliseconds each) run on in the same message, which saves a NATS hop per step on
 * the way to a campaign's first contact; a redelivery runs them again identically, so what
 * they send keeps its ids and their CRM writes their keys.
 */
export const planner = Agent.make({
  name: "planner",
  accepts: [Campaign.PlanRequested, PlannerProtocol.PlanStepRequested],
  concurrency: 8,
  handle: Effect.fnUntraced(function* (m, ctx) {
    const first: typeof PlannerProtocol.PlanStepRequested.payload.Type | null = Message.is(PlannerProtocol.PlanStepRequested)(m)
      ? m.payload
      : Message.is(Campaign.PlanRequested)(m)
        ? { request: m.payload, replyTo: m.envelope.from as string, steps: [], cost: Cost.zero }
        : null
    if (first === null) return
    const { request } = first
    // the steps this message takes count the audience once per filter
    return yield* Planner.withCountSnapshot(
      Effect.gen(function* () {
        let loop = first
        while (true) {
          // what the step writes is audited as done for the campaign, through the planner, in this trace
          // the step's model call may use what is left of the planning budget
          const left = request.maxCostUsd === undefined ? undefined : Math.max(0, request.maxCostUsd - loop.cost.usd)
          const r = yield* Planner.step(ctx.tenant, request, loop.steps, loop.cost, m.envelope.ts).pipe(
            Tenancy.withActor(Tenancy.agentActor(`campaign:${request.campaignId}`, "planner", m.envelope.trace.traceparent)),
            Llm.capped(left)
          )
          ctx.send(topicOf(request.campaignId), PlannerProtocol.PlannerStepRecorded, {
            campaignId: request.campaignId,
            step: r.step,
            maxSteps: Planner.MAX_PLAN_STEPS,
            cost: r.cost
          })
          // workflow control goes to the campaign actor, which asks a person before applying it
          if (r.control !== null) ctx.send(loop.replyTo as Address.Address, PlannerProtocol.ControlRequested, r.control)
          if (r.plan !== null) {
            return ctx.send(loop.replyTo as Address.Address, Campaign.PlanReady, { campaignId: request.campaignId, plan: r.plan, cost: r.cost })
          }
          const next: typeof PlannerProtocol.PlanStepRequested.payload.Type = { ...loop, steps: [...loop.steps, r.step], cost: r.cost }
          if (!r.deterministic) return ctx.send(ctx.self, PlannerProtocol.PlanStepRequested, next)
          loop = next
        }
      })
    )
  })
})

// CONTENT_CONTEXT=off drafts from the contact record alone (about half the CPU per contact).
// Read once per config provider: read per draft, an unset variable cost an exception (with
// its stack trace) built and thrown away every time, about 0.6% of a node's CPU.
const contentContextOf = new WeakMap<ConfigProvider.ConfigProvider, boolean>()
const contentContext = Effect.configProviderWith((provider) => {
  const known = contentContextOf.get(provider)
  return known !== undefined
    ? Effect.succeed(known)
    : Config.boolean("CONTENT_CONTEXT").pipe(Config.withDefault(true), Effect.orDie, Effect.tap((on) => contentContextOf.set(provider, on)))
})

/**
 * Messages the content agent and the analyzer handle at once per node. Each waits on a
 * model call most of its time (a remote model's is hundreds of ms to seconds), so a node
 * keeps many in flight: at 64, 300 ms calls capped a node at about 200 drafts a second
 * while its CPU had room (bench scale-out, one worker: 164 contacts/s at 64, 211-270 at
 * 256). `NEXUS_AGENT_CONCURRENCY` sets it per deployment (a provider's rate limit, say).
 */
export const MODEL_BOUND_CONCURRENCY = 256

/**
 * Content: a filtered message for one contact and channel, personalised from the contact's
 * assembled context (one `ContactContext` assembly per request: the planner works on the
 * audience, not on single contacts, so there is no per-contact context upstream to reuse).
 */
export const content = Agent.make({
  name: "content",
  accepts: [Campaign.DraftRequested],
  concurrency: MODEL_BOUND_CONCURRENCY,
  handle: Effect.fnUntraced(function* (m, ctx) {
    if (!Message.is(Campaign.DraftRequested)(m)) return
    const { campaignId, contact, channel, brief } = m.payload
    // model calls stay within what the contact may spend on this draft
    const withContext = yield* contentContext
    const d = yield* Content.draft(ctx.tenant, { contact, channel, brief, ...(withContext ? {} : { context: null }) }, `${ctx.tenant}/draft/${m.envelope.id}`).pipe(
      Llm.capped(m.payload.maxCostUsd)
    )
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

/**
 * Executor: delivers over a channel, at most once per idempotency key. An outcome known at
 * once goes back to the sender, or, when the request asks (`analyse`), straight on to the
 * analyzer on the sender's behalf: its analysis then answers the sender, one hop sooner.
 */
export const executor = Agent.make({
  name: "executor",
  accepts: [Campaign.DeliverRequested],
  concurrency: 64,
  handle: Effect.fnUntraced(function* (m, ctx) {
    if (!Message.is(Campaign.DeliverRequested)(m)) return
    const { analyse, ...r } = m.payload
    const channels = yield* Channels
    const result = yield* channels.deliver({ tenant: ctx.tenant, ...r })
    const ids = { campaignId: r.campaignId, contactId: r.contactId, channel: r.channel, idempotencyKey: r.idempotencyKey }
    switch (result._tag) {
      case "Delivered": {
        const delivery: Campaign.DeliveryFacts = {
          idempotencyKey: r.idempotencyKey,
          outcome: result.outcome,
          detail: result.duplicate ? `${result.detail} (recorded earlier; not sent again)` : result.detail,
          durationSec: result.durationSec,
          transcript: result.transcript
        }
        // Object.assign, not a spread followed by new keys: V8's slow path (see `Message.registry`'s encodeJson)
        if (analyse === undefined) return ctx.reply(Campaign.Delivered, Object.assign({}, ids, delivery))
        // what the analysis may spend: what the contact had left, less what this delivery costs
        const left = analyse.allowanceLeftUsd
        const cap = left === null ? {} : { maxCostUsd: Math.max(0, left - ChannelPrices.costUsd(r.channel, delivery.durationSec)) }
        return ctx.send(
          Address.agent("analyzer"),
          Campaign.AnalyseRequested,
          { campaignId: r.campaignId, contactId: r.contactId, channel: r.channel, outcome: delivery.outcome, transcript: delivery.transcript, leadScore: r.leadScore, delivery, ...cap },
          { replyTo: ctx.replyTo }
        )
      }
      case "Pending":
        return ctx.reply(Dispatch.DeliveryPending, Object.assign({}, ids, { providerRef: result.providerRef, detail: result.detail }))
      case "Deferred":
        return ctx.reply(Dispatch.DeliveryDeferred, Object.assign({}, ids, { reason: result.reason, retryAt: result.retryAt }))
    }
  })
})

/** Analyzer: per-outcome analysis, and the campaign-level rate watch. */
export const analyzer = Agent.make({
  name: "analyzer",
  accepts: [Campaign.AnalyseRequested, Dispatch.CampaignReviewRequested],
  concurrency: MODEL_BOUND_CONCURRENCY,
  handle: Effect.fnUntraced(function* (m, ctx) {
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
    ).pipe(Llm.capped(r.maxCostUsd))
    ctx.reply(Campaign.Analysed, {
      campaignId: r.campaignId,
      contactId: r.contactId,
      sentiment: a.sentiment,
      buyingSignals: a.buyingSignals,
      objections: a.objections,
      nextBestAction: a.nextBestAction,
      leadStatus: a.leadStatus,
      model: a.model,
      cost: a.cost,
      ...(r.delivery !== undefined ? { delivery: r.delivery } : {})
    })
  })
})

/** The key a wake-up's id derives from: one `StepDue` per contact and token, however often it was asked for. */
export const wakeKey = (contactId: string, token: string): string => `step-due/${contactId}/${token}`

/**
 * Scheduler: wakes a deferred contact at its time, on durable timers. A deferral that is not
 * due goes back to the work queue until it is (`NotDue`): it waits in JetStream, not in a
 * node's memory, so node and cluster restarts keep it. When due it sends `StepDue`, with an
 * id derived from the contact and token, so a re-run or a second deferral with the same
 * token (within the duplicate window) is stored once; after it the contact ignores the stale
 * token. Overdue deferrals after downtime fire at the node's timer rate, spread out.
 */
export const scheduler = Agent.make({
  name: "scheduler",
  accepts: [Dispatch.DeferRequested],
  timers: true,
  handle: Effect.fnUntraced(function* (m, ctx) {
    if (!Message.is(Dispatch.DeferRequested)(m)) return
    const r = m.payload
    const now = yield* Clock.currentTimeMillis
    if (r.wakeAt > now) return Agent.notDue(r.wakeAt)
    ctx.send(
      Address.actor("contact", r.contactId),
      Dispatch.StepDue,
      { campaignId: r.campaignId, contactId: r.contactId, reason: r.reason, token: r.token },
      { key: wakeKey(r.contactId, r.token) }
    )
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
  handle: Effect.fnUntraced(function* (m, ctx) {
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
