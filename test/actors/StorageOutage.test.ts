/**
 * A database outage in the middle of a campaign does not strand it. The campaign's
 * database goes away for longer than a handler's ordinary retries (its connections cut,
 * new ones refused), then comes back. Handlers wait the outage out (`Supervision`'s
 * outage window) instead of dead-lettering what they could not do: before that, the
 * campaign actor dead-lettered the completions it could not count (its next window of
 * contacts could not be read), and never completed.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import pg from "pg"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { Campaign, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { adminUrl } from "../fixtures/Postgres.js"

const tenant = Ids.TenantId.make("outage")
const campaignId = Ids.CampaignId.make("cmp-outage")
const CONTACTS = 2_000
const OUTAGE_MS = 6_000

/** Runs statements on the admin database. */
const admin = (...statements: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const c = new pg.Client({ connectionString: adminUrl })
    await c.connect()
    try {
      for (const s of statements) await c.query(s)
    } finally {
      await c.end()
    }
  })

const terminal = (es: ReadonlyArray<Events.StoredEvent>) =>
  Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "completed").length

layer(Crm.layer(), { timeout: 120_000, excludeTestServices: true })("a database outage mid-campaign", (it) => {
  it.scoped(
    "every contact ends and is counted; the campaign completes once the database is back",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [{ name }] = (yield* sql<{ name: string }>`SELECT current_database() AS name`) as unknown as [{ name: string }]
        yield* DemoData.load(tenant, CONTACTS, 3)
        const node = yield* Node.start(CrmApp.nodeOptions)
        yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
          campaignId,
          name: "outage",
          goal: "email every lead we have",
          audience: {},
          channels: ["email"],
          targetCount: CONTACTS,
          budget: { maxActions: 10_000, maxCostUsd: 100 }
        })
        yield* Events.until("some contacts done", tenant, campaignId, (es) => terminal(es) >= 20)

        // the database goes away: its connections are cut and new ones refused
        yield* admin(
          `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`,
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`
        )
        const cut = terminal(yield* Events.of(tenant, campaignId))
        yield* Effect.sleep(OUTAGE_MS)
        expect(terminal(yield* Events.of(tenant, campaignId)), "the campaign is held up by the outage").toBeLessThan(CONTACTS)
        expect(cut).toBeLessThan(CONTACTS)
        yield* admin(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`)

        const events = yield* Events.until("the campaign to complete", tenant, campaignId, (es) => es.some((e) => e.type === "event.campaign-completed"), 90_000)
        const summary = Events.ofType(events, "event.campaign-completed")[0]!.payload.summary
        expect(summary.counts).toMatchObject({ targeted: CONTACTS, dispatched: CONTACTS, completed: CONTACTS, inProgress: 0 })
        expect(terminal(events)).toBe(CONTACTS)
        // the outage was waited out, not dead-lettered
        expect(node.counters.retries).toBeGreaterThan(0)
        const { subjects } = yield* Deployment.Deployment
        expect(yield* Crm.readAll(subjects.streams.deadLetters, subjects.deadLettersAll)).toEqual([])
        // one delivery per contact delivered to, as without an outage
        const ledger = yield* (yield* DeliveryLedger).byCampaign(tenant, campaignId)
        expect(new Set(ledger.map((d) => d.contactId)).size).toBe(ledger.length)
        expect(ledger.length).toBe(summary.counts.reached + Events.ofType(events, "event.contact-progress").filter((e) => e.payload.phase === "completed" && e.payload.reason === "not-reached:bounced").length)
      }),
    { timeout: 120_000 }
  )
})
