/**
 * The walking skeleton end to end: a campaign started by publishing its command on NATS
 * (as an external system would) runs through planner, contact actors, content, executor
 * and analyzer agents (the executor passing each outcome straight to the analyzer), and
 * completes; a dashboard client over WebSocket sees every event
 * in order, and a second client resuming from a middle sequence sees exactly the rest.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as Gateway from "../../gateway/Gateway.js"
import * as GatewayConfig from "../../gateway/GatewayConfig.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { CampaignRepo } from "../../storage/CampaignRepo.js"
import * as DemoData from "../../storage/DemoData.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Crm from "../fixtures/Crm.js"
import { Client } from "../fixtures/WsClient.js"
import { authSettings, token } from "../gateway/Tokens.js"

const Env = Layer.provideMerge(Gateway.layer, GatewayConfig.layerWith({ port: 0, ...authSettings })).pipe(Layer.provideMerge(Crm.layer()))
const viewer = await token("acme", "viewer")

layer(Env, { timeout: 120_000, excludeTestServices: true })("campaign flow over NATS", (it) => {
  it.scoped("a campaign started on NATS completes and streams every event in order over WebSocket", () =>
    Effect.gen(function* () {
      const tenant = Ids.TenantId.make("acme")
      yield* DemoData.load(tenant, 300, 7)
      yield* DemoData.load(Ids.TenantId.make("other"), 50, 8)
      const node = yield* Node.start(CrmApp.nodeOptions)
      const gw = yield* Gateway.Gateway
      const campaignId = Ids.CampaignId.make("cmp-e2e-1")

      // what reaches the contact actors' mailboxes
      const { subjects } = yield* Deployment.Deployment
      const { nc } = yield* NatsClient
      const toContacts: Array<{ type: string; ts: number; payload: any }> = []
      const tap = nc.subscribe(`${subjects.prefix}.${tenant}.mbox.*.contact.*`, {
        callback: (_e, msg) => void toContacts.push(msg.json<{ type: string; ts: number; payload: any }>())
      })
      // and the campaign actor's
      const toCampaign: Array<{ type: string; payload: any }> = []
      const campaignTap = nc.subscribe(`${subjects.prefix}.${tenant}.mbox.*.campaign.*`, {
        callback: (_e, msg) => void toCampaign.push(msg.json<{ type: string; payload: any }>())
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => (tap.unsubscribe(), campaignTap.unsubscribe())))

      const live = yield* Effect.promise(() => Client.open(`${gw.url}?token=${viewer}`))
      live.send({ op: "subscribe", campaignId })
      yield* Effect.promise(() => live.next("subscribed"))

      yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
        campaignId,
        name: "Q4 enterprise calls",
        goal: "call 40 qualified enterprise leads",
        audience: {},
        channels: ["voice", "email", "sms"],
        targetCount: 40,
        budget: { maxActions: 1000, maxCostUsd: 100 }
      })
      const isDone = (c: Client) => () => (c.events(campaignId).some((e) => e.type === "event.campaign-completed") ? true : undefined)
      yield* Effect.promise(() => live.until("campaign completed event", isDone(live), 60_000))

      // payloads are checked by the assertions below
      const events: Array<{ seq: number; id: string; type: string; payload: any }> = live.events(campaignId)
      const completed = events.find((e) => e.type === "event.campaign-completed")!.payload.summary
      const planned = events.find((e) => e.type === "event.campaign-planned")!.payload.plan
      // the planner read "enterprise" and "qualified" from the goal and recorded its reasoning
      expect(planned.audience.segments).toEqual(["enterprise"])
      expect(planned.reasoning.length).toBeGreaterThanOrEqual(2)
      expect(planned.channelSequence[0]).toBe("voice")

      // every targeted contact reached exactly one terminal state
      const targeted = completed.counts.targeted
      expect(targeted).toBe(planned.limit)
      expect(targeted).toBeGreaterThan(0)
      expect(completed.counts.completed).toBe(targeted)
      expect(completed.counts.reached + completed.counts.skipped + completed.counts.failed).toBe(targeted)
      const terminal = events.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "completed")
      const terminalIds = terminal.map((e) => e.payload.contactId)
      expect(new Set(terminalIds).size).toBe(targeted)
      expect(terminalIds.length).toBe(targeted)

      // in order, and exactly what JetStream holds for this campaign
      const seqs = events.map((e) => e.seq)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      const stored = yield* Crm.readAll(subjects.streams.events, subjects.eventsOf(tenant, "campaign", campaignId))
      expect(seqs).toEqual(stored.map((s) => s.seq))

      // a second client resuming from a middle sequence sees exactly the rest
      const mid = Math.floor(events.length / 2)
      const resumed = yield* Effect.promise(() => Client.open(`${gw.url}?token=${viewer}`))
      resumed.send({ op: "subscribe", campaignId, fromSeq: events[mid]!.seq })
      yield* Effect.promise(() => resumed.until("resumed client completed", isDone(resumed), 60_000))
      expect(resumed.events(campaignId).map((e) => e.id)).toEqual(events.slice(mid).map((e) => e.id))

      // the outside world: one ledger entry per contact that got past consent and locks
      const ledger = yield* DeliveryLedger
      const deliveries = yield* ledger.byCampaign(tenant, campaignId)
      expect(deliveries.length).toBe(targeted - completed.counts.skipped)
      expect(new Set(deliveries.map((d) => d.contactId)).size).toBe(deliveries.length)
      // the executor passed every outcome straight to the analyzer: each contact heard of its
      // delivery in the analysis (with the delivery's key and outcome), none in a `Delivered` of its own
      expect(toContacts.filter((m) => m.type === Campaign.Delivered.type)).toEqual([])
      const analysed = toContacts.filter((m) => m.type === Campaign.Analysed.type)
      expect(analysed.map((m) => [m.payload.contactId, m.payload.delivery?.idempotencyKey, m.payload.delivery?.outcome]).sort()).toEqual(
        deliveries.map((d) => [d.contactId, d.idempotencyKey, d.outcome]).sort()
      )
      // each contact told its campaign when it was engaged (its engage command's time), which
      // the campaign paces itself by
      const engagedAt = new Map(toContacts.filter((m) => m.type === Campaign.EngageContact.type).map((m) => [m.payload.contact.id, m.ts]))
      const reports = toCampaign.filter((m) => m.type === Campaign.ContactCompleted.type)
      expect(reports).toHaveLength(targeted)
      expect(reports.map((m) => [m.payload.contactId, m.payload.dispatchedAt]).sort()).toEqual(
        reports.map((m) => [m.payload.contactId, engagedAt.get(m.payload.contactId)]).sort()
      )
      const record = yield* (yield* CampaignRepo).get(tenant, campaignId)
      expect(Option.getOrThrow(record).status).toBe("completed")
      expect(node.counters.deadLetters).toBe(0)
      yield* Effect.promise(() => Promise.all([live.close(), resumed.close()]))
    })
  )
})
