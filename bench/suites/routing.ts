/**
 * The routing suite: money per contact with the model router versus one premium model for
 * every task, over the planner's scenario suite (24 campaign goals). Each goal is planned
 * (ReAct steps, a planning task) and each targeted contact gets a draft (generation) and an
 * analysis of its sandbox outcome (analysis with a transcript, classification without),
 * all through the offline model, which reports the tokens a hosted model would be billed
 * (prompt, output schema and answer sizes). Those token counts are then priced at the
 * dated price table for the model the router picks per task kind, and for the premium
 * model, per provider family. The NexusCRM paper claims an 86% reduction; this reports
 * what the prices and token counts here give.
 */
import { Effect, Layer } from "effect"
import * as OutcomeAnalysis from "../../actors/analysis/OutcomeAnalysis.js"
import * as Channels from "../../actors/Channels.js"
import * as Content from "../../actors/content/Content.js"
import * as Llm from "../../actors/llm/Llm.js"
import * as ModelCatalog from "../../actors/llm/ModelCatalog.js"
import * as Router from "../../actors/llm/Router.js"
import type { TaskKind } from "../../actors/llm/Router.js"
import * as Usage from "../../actors/llm/Usage.js"
import * as Model from "../../actors/Model.js"
import * as Knowledge from "../../actors/planner/Knowledge.js"
import * as Planner from "../../actors/planner/Planner.js"
import type { Planner as PlannerProtocol } from "../../protocols/index.js"
import * as Cost from "../../protocols/Cost.js"
import { CampaignId, TenantId } from "../../protocols/Ids.js"
import * as ActionLedger from "../../storage/ActionLedger.js"
import * as CampaignRepo from "../../storage/CampaignRepo.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Records from "../../storage/Records.js"
import { scenarios } from "../../test/fixtures/PlanScenarios.js"
import { type Row, row, type Suite } from "../Bench.js"

const tenant = TenantId.make("bench-routing")

interface Call {
  readonly kind: TaskKind
  readonly usage: Usage.Usage
}

/** An LLM service that answers with the offline model and records each call's kind and tokens. */
const recording = (calls: Array<Call>) =>
  Layer.effect(
    Llm.Llm,
    Effect.map(Llm.Llm, (inner) => ({
      models: inner.models,
      run: (task, input, options) =>
        inner.run(task, input, options).pipe(
          Effect.tap((r) =>
            Effect.sync(() =>
              calls.push({
                kind: task.kind,
                usage: { inputTokens: r.cost.inputTokens, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: r.cost.outputTokens }
              })
            )
          )
        )
    }) satisfies Llm.LlmService)
  ).pipe(Layer.provide(Model.layerOffline))

/** Plans every scenario and works up to `perScenario` contacts of each; returns the calls and contacts. */
const workload = (perScenario: number, calls: Array<Call>) =>
  Effect.gen(function* () {
    yield* DemoData.load(tenant, 2_000, 3)
    const repo = yield* ContactRepo.ContactRepo
    let contacts = 0
    for (const [n, s] of scenarios.entries()) {
      const request = { campaignId: CampaignId.make(`bench-${n}`), goal: s.goal, audience: s.audience ?? {}, channels: s.channels, targetCount: s.target }
      const steps: Array<PlannerProtocol.PlanStep> = []
      let cost = Cost.zero
      let plan = null
      while (plan === null) {
        const r = yield* Planner.step(tenant, request, steps, cost)
        steps.push(r.step)
        cost = r.cost
        plan = r.plan
      }
      const targets = (yield* repo.window(tenant, plan.audience, null, Math.min(plan.limit, perScenario))).contacts
      for (const contact of targets) {
        const channel = plan.channelSequence[0]
        yield* Content.write(tenant, { contact, channel, brief: plan.brief }, null) // no knowledge store here: drafts from the snapshot
        const outcome = Channels.sandboxOutcome({ tenant, campaignId: request.campaignId, contactId: contact.id, channel, to: "", subject: null, body: "", idempotencyKey: "", leadScore: contact.leadScore })
        yield* OutcomeAnalysis.analyse(tenant, { channel, outcome: outcome.outcome, transcript: outcome.transcript, leadScore: contact.leadScore }, null)
      }
      contacts += targets.length
    }
    return contacts
  })

/** Money of the calls when each is answered by `modelOf(kind)`. */
const price = (calls: ReadonlyArray<Call>, modelOf: (kind: TaskKind) => string) =>
  calls.reduce((usd, c) => usd + Usage.usdOf(modelOf(c.kind), c.usage), 0)

// the OpenAI catalogue has no premium tier: its comparison is with its large model, without the paper's target
const families = [
  { name: "Anthropic", premium: "anthropic:claude-opus-4-1" as string | null, large: "anthropic:claude-sonnet-4-5", provider: "anthropic" },
  { name: "OpenAI", premium: null, large: "openai:gpt-4.1", provider: "openai" }
] as const

const suite: Suite = {
  name: "routing",
  run: async ({ full }) => {
    const calls: Array<Call> = []
    const perScenario = full ? 200 : 30
    const env = Layer.mergeAll(Knowledge.layerOffline, recording(calls)).pipe(
      Layer.provideMerge(Layer.mergeAll(ContactRepo.layer, CampaignRepo.layer, Records.layer, ActionLedger.layer)),
      Layer.provideMerge(Database.layerEmbedded(Database.memory))
    )
    const contacts = await Effect.runPromise(Effect.scoped(workload(perScenario, calls).pipe(Effect.provide(env))))
    const rows: Array<Row> = []
    const byKind = (k: TaskKind) => calls.filter((c) => c.kind === k)
    const tokens = calls.reduce((n, c) => n + c.usage.inputTokens + c.usage.outputTokens, 0)
    rows.push(row("routing: model calls per contact", calls.length / contacts, "calls", {}))
    rows.push(row("routing: tokens per contact (in+out)", tokens / contacts, "tokens", {}))
    for (const k of ["planning", "generation", "analysis", "classification"] as const) {
      rows.push(row(`routing: ${k} calls`, byKind(k).length, "calls", {}))
    }
    for (const f of families) {
      const models = ModelCatalog.hostedModels.filter((m) => m.provider === f.provider)
      const routed = price(calls, (k) => Router.pick(models, k)!.id) / contacts
      const large = price(calls, () => f.large) / contacts
      if (f.premium !== null) {
        const premium = price(calls, () => f.premium!) / contacts
        const reduction = 1 - routed / premium
        rows.push(row(`routing: $/contact routed vs one premium model (${f.name}, ${f.premium})`, routed, "USD", {
          baseline: premium,
          target: "<= 0.14x (paper: 86% less)",
          met: routed / premium <= 0.14
        }))
        rows.push(row(`routing: cost reduction vs premium model (${f.name})`, reduction * 100, "%", { target: ">= 86 (paper)", met: reduction >= 0.86 }))
      }
      rows.push(row(`routing: $/contact routed vs large model for all (${f.name}, ${f.large})`, routed, "USD", { baseline: large }))
      rows.push(row(`routing: cost reduction vs large model (${f.name})`, (1 - routed / large) * 100, "%", {}))
    }
    return rows
  }
}

export default suite
