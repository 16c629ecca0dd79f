/**
 * Campaign messages that run out of deliveries do not leave a campaign waiting for ever.
 *
 * - An engage that never reaches its contact (here the node that holds the contact's
 *   partition naks it, as one that cannot commit would) becomes a dead letter, and its
 *   contact is engaged from the dead letter's copy: the campaign completes with every
 *   contact worked. The first node holds every partition but the contact's; the test drives
 *   that partition's consumer itself until the server gives up on the engage, then a second
 *   node takes the partition and hears the notice.
 * - A contact's report that never reaches its campaign is counted from the notice's copy
 *   (the notice as the runtime writes it; the runtime skips notices of messages the actor
 *   applied, see `test/runtime/ExhaustedDeliveries.test.ts`).
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as DispatchPolicy from "../../actors/guardrails/DispatchPolicy.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, Campaign, DeadLetter, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"
import { snapshot } from "../fixtures/Contacts.js"

const tenant = Ids.TenantId.make("lost")
const campaignId = Ids.CampaignId.make("cmp-lost")
/** Of 4 partitions, `l-002` alone is on partition 3; the campaign is on partition 1. */
const PARTITIONS = 4
const LOST = "l-002"
const ids = ["l-000", "l-001", "l-002", "l-003", "l-004", "l-005"]
const MAX_DELIVER = 3
const policy = Ref.unsafeMake<DispatchPolicy.PolicySettings>(DispatchPolicy.anyTime)

layer(Crm.layer({ partitions: PARTITIONS }, { policy: DispatchPolicy.layerRef(policy) }), { timeout: 90_000, excludeTestServices: true })("a lost engage", (it) => {
  it.scoped("an engage that ran out of deliveries is dead-lettered, its contact is engaged from the copy, and the campaign completes", () =>
    Effect.gen(function* () {
      const { js, jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      const lostPartition = subjects.partitionOf("contact", LOST)
      expect(ids.filter((id) => subjects.partitionOf("contact", id) === lostPartition)).toEqual([LOST])
      expect(subjects.partitionOf("campaign", campaignId)).not.toBe(lostPartition)
      yield* (yield* ContactRepo).insertMany(tenant, ids.map((id) => snapshot(id, { consent: { voice: false, email: true, sms: false } })))

      const others = Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => p !== lostPartition)
      yield* Node.start({ ...CrmApp.nodeOptions, partitions: others })
      const mailboxes = subjects.streams.mailboxes
      const durable = topology.mailboxConsumer(lostPartition).durable_name
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, durable, { max_deliver: MAX_DELIVER }))

      yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
        campaignId,
        name: "lost engage",
        goal: "email our leads",
        audience: {},
        channels: ["email"],
        targetCount: ids.length,
        budget: { maxActions: 100, maxCostUsd: 10 }
      })
      // the node holding the contact's partition naks its engage until the server gives up
      const consumer = yield* Effect.promise(() => js.consumers.get(mailboxes, durable))
      const deliveries = yield* Effect.promise(async () => {
        const seen: Array<number> = []
        // one more pull than deliveries: with a pull waiting, the server finds it may not deliver
        // again (that pull may bring the contact's notice: handed back too, for the next node)
        for (let pulls = 0; pulls <= MAX_DELIVER; pulls++) {
          for await (const m of await consumer.fetch({ max_messages: 1, expires: 3_000 })) {
            if (m.json<{ type: string }>().type === Campaign.EngageContact.type) seen.push(m.info.deliveryCount)
            m.nak()
          }
        }
        return seen
      })
      expect(deliveries).toEqual([1, 2, 3])

      // the engage is a dead letter now; whoever holds the partition next hears of it
      yield* Node.start({ ...CrmApp.nodeOptions, partitions: [lostPartition] })
      const events = yield* Events.until("the campaign to complete", tenant, campaignId, (es) =>
        es.some((e) => e.type === "event.campaign-completed")
      )
      const terminal = Events.ofType(events, "event.contact-progress").filter((e) => e.payload.phase === "completed").map((e) => e.payload)
      expect(terminal.map((p) => p.contactId).sort()).toEqual(ids)
      const summary = Events.ofType(events, "event.campaign-completed")[0]!.payload.summary
      expect(summary.counts).toMatchObject({ targeted: ids.length, completed: ids.length, inProgress: 0 })
      // the lost contact was worked like the others: one delivery each
      const ledger = yield* (yield* DeliveryLedger).byCampaign(tenant, campaignId)
      expect(ledger.map((d) => d.contactId).sort()).toEqual(ids)
      // and the dead letter says what happened to its engage
      const dead = yield* Effect.promise(() =>
        jsm.streams.getMessage(subjects.streams.deadLetters, { last_by_subj: subjects.deadLetter(tenant, "DeliveriesExhausted") })
      )
      expect(dead?.json<{ payload: { originalType: string; receiver: string } }>().payload).toMatchObject({
        originalType: Campaign.EngageContact.type,
        receiver: `actor:contact:${LOST}`
      })
    })
  )

  it.scoped("a contact's report that ran out of deliveries is counted from its dead letter", () =>
    Effect.gen(function* () {
      const { subjects } = yield* Deployment.Deployment
      const reportTenant = Ids.TenantId.make("lost-report")
      const reportCampaign = Ids.CampaignId.make("cmp-lost-report")
      // emails wait for a window hours away: every contact stays in flight
      const now = new Date()
      const hhmm = (h: number) => `${String((now.getUTCHours() + h) % 24).padStart(2, "0")}:00`
      yield* Ref.set(policy, { ...DispatchPolicy.anyTime, quietHours: { voice: null, sms: null, email: { start: hhmm(2), end: hhmm(3) } } })
      const contacts = ["r-1", "r-2", "r-3"]
      yield* (yield* ContactRepo).insertMany(reportTenant, contacts.map((id) => snapshot(id, { timezone: "UTC", consent: { voice: false, email: true, sms: false } })))
      yield* Node.start(CrmApp.nodeOptions)
      yield* Crm.publishCommand(reportTenant, Campaign.StartCampaign, {
        campaignId: reportCampaign,
        name: "lost report",
        goal: "email our leads",
        audience: {},
        channels: ["email"],
        targetCount: contacts.length,
        budget: { maxActions: 100, maxCostUsd: 10 }
      })
      yield* Events.until("every contact deferred", reportTenant, reportCampaign, (es) => Events.ofType(es, "event.contact-deferred").length === contacts.length)

      // r-1's report to the campaign, as the dead letter of a report that ran out of deliveries keeps it
      const to = Address.actor("campaign", reportCampaign)
      const report: typeof Campaign.ContactCompleted.payload.Type = {
        campaignId: reportCampaign,
        contactId: Ids.ContactId.make("r-1"),
        status: "failed",
        reason: "test:lost-report",
        channel: "email",
        touches: 1
      }
      const envelope = {
        id: "lost-report-1" as never,
        tenant: reportTenant,
        from: Address.actor("contact", "r-1"),
        to,
        correlationId: "lost-report-1",
        causationId: null,
        ts: Date.now(),
        trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
      }
      const original = CrmApp.registry.encode(envelope, Campaign.ContactCompleted, report)
      yield* Runtime.send(CrmApp.registry, reportTenant, to, DeadLetter.DeadLettered, {
        reason: "DeliveriesExhausted",
        error: { _tag: "DeliveriesExhausted", message: "campaign.contact-completed delivered 20 times and never acked" },
        receiver: to,
        subject: subjects.mailbox(reportTenant, subjects.partitionOf("campaign", reportCampaign), "campaign", reportCampaign),
        stream: subjects.streams.mailboxes,
        streamSeq: 999_999,
        deliveries: 20,
        originalType: Campaign.ContactCompleted.type,
        originalId: "lost-report-1",
        headers: {},
        dataBase64: Buffer.from(original).toString("base64"),
        at: Date.now()
      }, Address.ext("runtime"))

      const events = yield* Events.until("the report to be counted", reportTenant, reportCampaign, (es) =>
        Events.ofType(es, "event.campaign-progress").some((e) => e.payload.counts.completed === 1)
      )
      const counted = Events.ofType(events, "event.campaign-progress").find((e) => e.payload.counts.completed === 1)!.payload.counts
      expect(counted).toMatchObject({ completed: 1, failed: 1, inProgress: contacts.length - 1 })
      yield* Ref.set(policy, DispatchPolicy.anyTime)
    })
  )
})
