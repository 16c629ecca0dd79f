/**
 * Traces across NATS hops inside the runtime: a small campaign on real NATS and Postgres,
 * with an OpenTelemetry SDK tracer whose spans go to an in-memory exporter. Every message
 * handled (command router, campaign actor, contact actors, agents) is a span whose parent
 * is the span that sent the message, so the whole campaign is one trace under the start
 * command's span, and one contact's path reads hop by hop up its ancestors: campaign actor
 * → contact actor → content agent → contact actor → executor agent → analyzer agent →
 * contact actor → campaign actor.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { expect, layer } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Address, Campaign, Ids, Trace } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { snapshot } from "../fixtures/Contacts.js"

const exporter = new InMemorySpanExporter()
const Tracing = NodeSdk.layer(() => ({ resource: { serviceName: "nexus-test" }, spanProcessor: new SimpleSpanProcessor(exporter) }))
const Env = Crm.layer().pipe(Layer.provideMerge(Tracing))

const TENANT = Ids.TenantId.make("traced")
const CAMPAIGN = "cmp-traced"
const HOPS = new Set(["command.route", "actor.handle", "agent.handle"])

const contact = (id: string) =>
  snapshot(id, { name: `Traced ${id}`, email: `${id}@trace.example`, company: "Trace Labs", consent: { voice: false, email: true, sms: false } })

const idOf = (s: ReadableSpan) => s.spanContext().spanId
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId
/** `receiver type` of a hop span, e.g. `actor:contact:t-1 contact.engage`. */
const hop = (s: ReadableSpan) => `${s.attributes["nexus.receiver"]} ${s.attributes["nexus.type"]}`

layer(Env, { timeout: 90_000, excludeTestServices: true })("runtime tracing over NATS", (it) => {
  it.scoped("one contact's spans across campaign actor, contact actor and agents share the command's trace, parent to child", () =>
    Effect.gen(function* () {
      yield* (yield* ContactRepo).insertMany(TENANT, ["t-1", "t-2", "t-3"].map(contact))
      yield* Node.start(CrmApp.nodeOptions)
      const cmd = yield* Crm.publishCommand(TENANT, Campaign.StartCampaign, {
        campaignId: Ids.CampaignId.make(CAMPAIGN),
        name: "traced",
        goal: "email our leads",
        audience: {},
        channels: ["email"],
        targetCount: 3,
        budget: { maxActions: 10, maxCostUsd: 10 }
      })
      const commandTrace = Trace.parse(JSON.parse(new TextDecoder().decode(cmd.data)).trace.traceparent)!
      yield* Events.until("traced campaign completed", TENANT, CAMPAIGN, (es) => es.some((e) => e.type === "event.campaign-completed"))

      const campaign = Address.actor("campaign", CAMPAIGN)
      const contactOne = Address.actor("contact", "t-1")
      // the campaign's trace: the hops (tagged with the tenant) and the handlers' own spans inside them
      const spans = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === commandTrace.traceId)
      // the completion of t-1 as the campaign actor handled it: the end of that contact's path
      const leafOf = (all: ReadonlyArray<ReadableSpan>) => {
        const byId = new Map(all.map((s) => [idOf(s), s]))
        const ancestors = (s: ReadableSpan) => {
          const out: Array<ReadableSpan> = []
          for (let p = byId.get(parentOf(s) ?? ""); p !== undefined; p = byId.get(parentOf(p) ?? "")) out.push(p)
          return out
        }
        const completions = all.filter(
          (s) => s.name === "actor.handle" && hop(s) === `${campaign} ${Campaign.ContactCompleted.type}` && ancestors(s).some((a) => a.attributes["nexus.receiver"] === contactOne)
        )
        return { completions, ancestors, byId }
      }
      const completionSpans = () =>
        exporter.getFinishedSpans().filter((s) => s.name === "actor.handle" && s.attributes["nexus.tenant"] === TENANT && s.attributes["nexus.type"] === Campaign.ContactCompleted.type)
      yield* Crm.waitFor("the campaign actor's spans of 3 completions", Effect.sync(() => (completionSpans().length >= 3 ? true : undefined)), 10_000)

      const all = spans()
      // the whole campaign is one trace, the start command's: every hop of the tenant is in it
      const hopsOfTenant = exporter.getFinishedSpans().filter((s) => HOPS.has(s.name) && s.attributes["nexus.tenant"] === TENANT)
      const traces = new Set(hopsOfTenant.map((s) => s.spanContext().traceId))
      expect([...traces], "trace ids of the campaign's hops").toEqual([commandTrace.traceId])
      // 1 route + campaign (start, plan ready, 3 completions) + 3 contacts × 3 steps + 3 × 3 agent jobs, and the planner's
      expect(hopsOfTenant.length, "hops").toBeGreaterThanOrEqual(1 + 5 + 9 + 9 + 1)
      for (const name of HOPS) expect(all.some((s) => s.name === name), `a ${name} span`).toBe(true)
      // the spans a handler opens for each contact (`Trace.span`) are made with a configured tracer
      for (const name of ["Content.draft", "Content.write", "ContactContext.assemble", "Llm.run", "Channels.sandbox.deliver", "DeliveryLedger.record", "OutcomeAnalysis.analyse"]) {
        expect(all.some((s) => s.name === name), `a ${name} span`).toBe(true)
      }
      // a model call's span says which model answered and what it cost (`Trace.annotate`)
      expect(all.some((s) => s.name === "Llm.run" && s.attributes["llm.model"] === "offline:offline-v1" && typeof s.attributes["llm.usd"] === "number")).toBe(true)

      const { completions, ancestors, byId } = leafOf(all)
      expect(completions.length, "completions (of 3) whose ancestors include t-1's handling").toBe(1)
      const leaf = completions[0]!
      const chain = [leaf, ...ancestors(leaf)].filter((s) => HOPS.has(s.name)).reverse()
      // the planner may take several steps (each a message to itself) before its plan is ready
      const hops = chain.map(hop)
      const planned = hops.indexOf(`${campaign} ${Campaign.PlanReady.type}`)
      expect(hops.slice(0, 3), "t-1's first hops, from the start command down").toEqual([
        `ext:command-router ${Campaign.StartCampaign.type}`,
        `${campaign} ${Campaign.StartCampaign.type}`,
        `agent:planner ${Campaign.PlanRequested.type}`
      ])
      expect(hops.slice(3, planned).every((h) => h.startsWith("agent:planner ")), `planner steps: ${hops.slice(3, planned)}`).toBe(true)
      expect(hops.slice(planned), "t-1's hops from the plan on").toEqual([
        `${campaign} ${Campaign.PlanReady.type}`,
        `${contactOne} ${Campaign.EngageContact.type}`,
        `agent:content ${Campaign.DraftRequested.type}`,
        `${contactOne} ${Campaign.Drafted.type}`,
        `agent:executor ${Campaign.DeliverRequested.type}`,
        // the executor passes the outcome straight on to the analyzer, for the contact
        `agent:analyzer ${Campaign.AnalyseRequested.type}`,
        `${contactOne} ${Campaign.Analysed.type}`,
        `${campaign} ${Campaign.ContactCompleted.type}`
      ])
      // the chain ends at the command: the router's span is a child of the span that sent it
      const root = [leaf, ...ancestors(leaf)].at(-1)!
      expect(root.name).toBe("command.route")
      expect(parentOf(root), "the router continues the command's traceparent").toBe(commandTrace.spanId)
      // each hop is a consumer span; what it sent is its child (directly or through the handler's own spans)
      for (const s of chain) expect(s.kind, `kind of ${hop(s)}`).toBe(4 /* CONSUMER */)
      for (const [i, s] of chain.entries()) {
        if (i === 0) continue
        const up = ancestors(s)
        expect(up.includes(chain[i - 1]!), `${hop(s)} descends from ${hop(chain[i - 1]!)}`).toBe(true)
        expect(byId.has(parentOf(s)!), `the parent of ${hop(s)} was exported`).toBe(true)
      }
      // hop attributes: where the message came from, which delivery of which stream sequence
      const engage = chain[planned + 1]!
      expect(engage.attributes).toMatchObject({ "messaging.system": "nats", "nexus.sender": campaign, "nexus.tenant": TENANT, "nexus.delivery": 1 })
      expect(engage.attributes["nexus.stream_seq"]).toBeGreaterThan(0)
    }))
})
