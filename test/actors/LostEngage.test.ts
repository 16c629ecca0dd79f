/**
 * An engage that never reaches its contact (it ran out of deliveries: here the node that
 * holds the contact's partition naks it, as one that cannot commit would) does not leave its
 * campaign waiting for ever: the engage becomes a dead letter, the contact is told, reports
 * itself failed with the reason, and the campaign completes.
 *
 * The first node holds every partition but the contact's; the test drives that partition's
 * consumer itself until the server gives up on the engage, then a second node takes the
 * partition and hears the notice.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { snapshot } from "../fixtures/Contacts.js"

const tenant = Ids.TenantId.make("lost")
const campaignId = Ids.CampaignId.make("cmp-lost")
/** Of 4 partitions, `l-002` alone is on partition 3; the campaign is on partition 1. */
const PARTITIONS = 4
const LOST = "l-002"
const ids = ["l-000", "l-001", "l-002", "l-003", "l-004", "l-005"]
const MAX_DELIVER = 3

layer(Crm.layer({ partitions: PARTITIONS }), { timeout: 90_000, excludeTestServices: true })("a lost engage", (it) => {
  it.scoped("an engage that ran out of deliveries fails its contact with the reason, and the campaign completes", () =>
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
      expect(terminal.find((p) => p.contactId === LOST)).toMatchObject({ status: "failed", reason: "error:DeliveriesExhausted" })
      expect(terminal.map((p) => p.contactId).sort()).toEqual(ids)
      const summary = Events.ofType(events, "event.campaign-completed")[0]!.payload.summary
      expect(summary.counts).toMatchObject({ targeted: ids.length, completed: ids.length, inProgress: 0 })
      expect(summary.counts.failed).toBeGreaterThanOrEqual(1)
    })
  )
})
