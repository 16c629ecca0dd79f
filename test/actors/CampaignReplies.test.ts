/**
 * The `replied` counter end to end, on real NATS and Postgres with sandbox channels: a
 * reply during a contact's sequence ends it and counts; replies that arrive after a
 * contact's engagement ended (the usual case: an answer to an email days later) still count
 * for the campaign, even once it completed, once per contact; an opt-out is no answer. The
 * counts reach the campaign's progress events, its summary and a dashboard's WebSocket.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as Gateway from "../../gateway/Gateway.js"
import * as GatewayConfig from "../../gateway/GatewayConfig.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Dispatch, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { connect } from "../fixtures/WsClient.js"
import { authSettings, token } from "../gateway/Tokens.js"
import { snapshot } from "../fixtures/Contacts.js"

const Env = Layer.provideMerge(Gateway.layer, GatewayConfig.layerWith({ port: 0, ...authSettings })).pipe(Layer.provideMerge(Crm.layer()))
const TENANT = Ids.TenantId.make("replies")
const CAMPAIGN = Ids.CampaignId.make("cmp-replies")
const viewer = await token(TENANT, "viewer")

const contact = (id: string) => snapshot(id, { name: `Reply ${id}`, email: `${id}@replies.example`, company: "Reply Labs" })

/** A signal from a contact, as a channel's webhook or the CRM sends it. */
const inbound = (contactId: string, kind: Dispatch.InboundKind, campaignId: Ids.CampaignId | null = null) =>
  Crm.publishCommand(TENANT, Dispatch.ContactInbound, {
    contactId: Ids.ContactId.make(contactId),
    campaignId,
    kind,
    channel: "email",
    text: kind === "opt-out" ? "STOP" : "Sounds good, send me pricing",
    at: Date.now()
  })

/** Waits until every command is routed and every mailbox message handled and acked. */
const quiescent = Effect.gen(function* () {
  const { jsm } = yield* NatsClient
  const { subjects } = yield* Deployment.Deployment
  const busy = Effect.promise(async () => {
    let n = 0
    for (const stream of [subjects.streams.commands, subjects.streams.mailboxes]) {
      for (const c of await jsm.consumers.list(stream).next()) n += c.num_pending + c.num_ack_pending
    }
    return n
  })
  yield* Crm.waitFor("commands and mailboxes drained", Effect.map(busy, (n) => (n === 0 ? true : undefined)), 20_000)
})

const progress = (es: ReadonlyArray<Events.StoredEvent>) => Events.ofType(es, "event.campaign-progress").map((e) => e.payload.counts)
const terminal = (es: ReadonlyArray<Events.StoredEvent>) =>
  new Map(Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "completed").map((e) => [e.payload.contactId as string, e.payload]))

layer(Env, { timeout: 90_000, excludeTestServices: true })("replies counted for their campaign", (it) => {
  it.scoped("a reply during the sequence and answers after it ended count as replied, once per contact", () =>
    Effect.gen(function* () {
      const ids = ["r-seq", "r-late", "r-named", "r-optout"]
      yield* (yield* ContactRepo).insertMany(TENANT, ids.map(contact))
      yield* Node.start(CrmApp.nodeOptions)
      const gw = yield* Gateway.Gateway
      const dashboard = yield* connect(`${gw.url}?token=${viewer}`)
      dashboard.send({ op: "subscribe", campaignId: CAMPAIGN })

      yield* Crm.publishCommand(TENANT, Campaign.StartCampaign, {
        campaignId: CAMPAIGN,
        name: "replies",
        goal: "email our leads and follow up by sms after 3 seconds",
        audience: {},
        channels: ["email", "sms"],
        targetCount: 10,
        budget: { maxActions: 100, maxCostUsd: 10 }
      })
      // phase 1: every contact waits for its second touch; r-seq answers in the meantime
      yield* Events.until("second touches scheduled", TENANT, CAMPAIGN, (es) =>
        Events.ofType(es, "event.contact-deferred").filter((e) => e.payload.reason === "next-touch").length === ids.length
      )
      yield* inbound("r-seq", "reply")
      const done = yield* Events.until("campaign completed", TENANT, CAMPAIGN, (es) => es.some((e) => e.type === "event.campaign-completed"))
      const summary = Events.ofType(done, "event.campaign-completed")[0]!.payload.summary
      expect(terminal(done).get("r-seq"), "r-seq's engagement ended by its reply").toMatchObject({ status: "reached", reason: "replied" })
      for (const id of ["r-late", "r-named", "r-optout"]) expect(terminal(done).get(id)?.status, `${id} was reached (sandbox email/sms)`).toBe("reached")
      expect(summary.counts.replied, "replied in the summary").toBe(1)
      expect(progress(done).at(-1)!.replied, "replied in the last progress event").toBe(1)

      // phase 2: answers after the engagements ended, after the campaign completed
      yield* inbound("r-late", "reply") // no campaign named: the last one that reached the contact
      yield* inbound("r-late", "meeting-booked") // the same contact again: not counted twice
      yield* inbound("r-seq", "reply") // already counted during its sequence
      yield* inbound("r-named", "reply", CAMPAIGN)
      yield* inbound("r-optout", "opt-out") // no answer
      yield* quiescent
      const after = (yield* Events.of(TENANT, CAMPAIGN)).slice(done.length)
      expect(after.map((e) => e.type), "one progress event per counted answer").toEqual(["event.campaign-progress", "event.campaign-progress"])
      expect(progress(after).map((c) => c.replied)).toEqual([2, 3])
      expect(progress(after).at(-1), "the other counters are unchanged").toMatchObject({ ...summary.counts, replied: 3 })

      // what a dashboard receives over the gateway
      const seen = yield* Effect.promise(() =>
        dashboard.until("a progress frame with replied 3", () =>
          dashboard.events(CAMPAIGN).some((e) => e.type === "event.campaign-progress" && (e.payload as any).counts.replied === 3) ? true : undefined
        )
      )
      expect(seen).toBe(true)
    }))
})
