/**
 * Graceful drain with real processes: SIGTERM during a campaign makes the worker stop
 * pulling, commit its in-flight work and exit cleanly; a restarted worker finishes the
 * campaign and no contact is lost or worked twice (checked against the delivery ledger).
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Ids } from "../../protocols/index.js"
import * as Database from "../../storage/Database.js"
import * as DemoData from "../../storage/DemoData.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Crm from "../fixtures/Crm.js"
import * as NatsFixture from "../fixtures/Nats.js"
import * as Postgres from "../fixtures/Postgres.js"
import { spawnWorker } from "../fixtures/Worker.js"

const CONTACTS = 2000
const tenant = Ids.TenantId.make("drain")

layer(Deployment.layer.pipe(Layer.provideMerge(NatsFixture.layer({ partitions: 8 }))), { timeout: 180_000, excludeTestServices: true })(
  "node drain",
  (it) => {
    it.scoped("SIGTERM drains in-flight work; a restarted node finishes the campaign with no contact lost", () =>
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const { prefix } = yield* NatsFixture.NatsFixture
        const { subjects } = yield* Deployment.Deployment
        const dbLayer = Database.layerUrl(db.url)
        yield* DemoData.load(tenant, CONTACTS, 11).pipe(Effect.provide(CrmApp.repositories.pipe(Layer.provide(dbLayer))))
        const env = { NEXUS_PREFIX: prefix, NEXUS_PARTITIONS: "8", DATABASE_URL: db.url, NEXUS_NODE_NAME: "drain-test" }

        const first = yield* spawnWorker(env)
        yield* first.waitForLog(/runtime node up/)
        const campaignId = Ids.CampaignId.make("cmp-drain")
        const events = subjects.eventsOf(tenant, "campaign", campaignId)
        // contacts finished, counted live as their events are published: reading the stream
        // again on every poll took long enough that the worker finished all 2,000 first
        const { nc } = yield* NatsClient
        let finished = 0
        const live = nc.subscribe(events, {
          callback: (_e, m) => {
            const e = m.json<{ type: string; payload: { phase?: string } }>()
            if (e.type === "event.contact-progress" && e.payload.phase === "completed") finished++
          }
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => live.unsubscribe()))
        yield* Effect.promise(() => nc.flush())
        yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
          campaignId,
          name: "drain",
          goal: "email every lead",
          audience: {},
          channels: ["email", "sms"],
          targetCount: CONTACTS,
          budget: { maxActions: CONTACTS, maxCostUsd: 1000 }
        })
        const t0 = Date.now()
        yield* Crm.waitFor("the first 200 contacts to finish", Effect.sync(() => (finished >= 200 ? finished : undefined)), 60_000)
        console.log(`200 contacts finished ${Date.now() - t0} ms after the start command`)

        const code = yield* first.stop("SIGTERM")
        const atStop = (yield* Crm.readAll(subjects.streams.events, events)).filter(
          (e) => e.json.type === "event.contact-progress" && e.json.payload.phase === "completed"
        ).length
        console.log(`${atStop} of ${CONTACTS} contacts finished when the node had drained`)
        expect(code, `worker exit after SIGTERM; log:\n${first.log().slice(-2000)}`).toBe(0)
        expect(first.log()).toMatch(/node drained/)
        expect(atStop, "the campaign must still have work left when the node drained").toBeLessThan(CONTACTS)

        const second = yield* spawnWorker(env)
        const all = yield* Crm.waitFor(
          "campaign completion after restart",
          Effect.map(Crm.readAll(subjects.streams.events, events), (r) =>
            r.some((e) => e.json.type === "event.campaign-completed") ? r : undefined
          ),
          120_000
        )
        yield* second.stop("SIGTERM")

        const summary = all.find((e) => e.json.type === "event.campaign-completed")!.json.payload.summary
        expect(summary.counts.targeted).toBe(CONTACTS)
        expect(summary.counts.completed).toBe(CONTACTS)
        // exactly one terminal event per contact: none lost, none repeated
        const terminal = all.filter((e) => e.json.type === "event.contact-progress" && e.json.payload.phase === "completed")
        const ids = terminal.map((e) => e.json.payload.contactId as string)
        expect(new Set(ids).size).toBe(CONTACTS)
        expect(ids.length).toBe(CONTACTS)
        // the outside world saw each reachable contact exactly once
        const deliveries = yield* Effect.flatMap(DeliveryLedger, (l) => l.byCampaign(tenant, campaignId)).pipe(
          Effect.provide(CrmApp.repositories.pipe(Layer.provide(dbLayer)))
        )
        expect(deliveries.length).toBe(CONTACTS - summary.counts.skipped)
        expect(new Set(deliveries.map((d) => d.contactId)).size).toBe(deliveries.length)
      }),
      180_000
    )
  }
)
