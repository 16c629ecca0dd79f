/**
 * CRM records on a real Postgres server: tenants, companies, deals and activities upsert
 * idempotently (a repeat writes no audit row), every real change is audited with its actor,
 * and consent events update the contact flags the campaign flow reads.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { ContactId, TenantId } from "../../protocols/Ids.js"
import { CompanyId, type Deal, DealId } from "../../protocols/Inbound.js"
import * as AuditLog from "../../storage/AuditLog.js"
import * as Consent from "../../storage/Consent.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Records from "../../storage/Records.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

const tenant = TenantId.make("records")
const acme = { id: CompanyId.make("co-acme"), name: "Acme", domain: "acme.example", industry: "SaaS", region: "Europe", segment: "enterprise" as const }
const deal: Deal = {
  id: DealId.make("dl-1"), name: "Acme rollout", companyId: acme.id, contactId: ContactId.make("ct-000001"), stage: "proposal",
  amount: 120_000, currency: "EUR", products: ["Nexus CRM", "Nexus Voice"], expectedClose: Date.parse("2027-01-31T00:00:00Z")
}

const Env = Layer.mergeAll(Records.layer, AuditLog.layer, Consent.layer, ContactRepo.layer).pipe(Layer.provideMerge(Postgres.layerFresh))

layer(Env, { excludeTestServices: true })("Records (Postgres)", (it) => {
  it.effect("upserts companies, deals and activities idempotently; every change is audited with its actor", () =>
    Effect.gen(function* () {
      const records = yield* Records.Records
      const audit = yield* AuditLog.AuditLog
      const byUser = Tenancy.withActor({ principal: "user:sam", viaAgent: null, traceId: null })
      expect(yield* records.upsertTenant(tenant, "Records Inc").pipe(byUser)).toBe(true)
      expect(yield* records.upsertTenant(tenant, "Records Inc")).toBe(false)
      expect(yield* records.tenantName(tenant)).toEqual(Option.some("Records Inc"))

      expect(yield* records.upsertCompanies(tenant, [acme]).pipe(byUser)).toBe(1)
      expect(yield* records.upsertCompanies(tenant, [acme])).toBe(0)
      expect(yield* records.upsertDeals(tenant, [deal]).pipe(byUser)).toBe(1)
      expect(yield* records.upsertDeals(tenant, [deal])).toBe(0)
      expect(yield* records.getDeal(tenant, deal.id)).toEqual(Option.some(deal))
      const viaAgent = Tenancy.withActor(Tenancy.agentActor("user:sam", "planner", `00-${"9a".repeat(16)}-${"8b".repeat(8)}-01`))
      expect(yield* records.upsertDeals(tenant, [{ ...deal, stage: "won" }]).pipe(viaAgent)).toBe(1)
      expect((yield* records.dealsOf(tenant, acme.id)).map((d) => d.stage)).toEqual(["won"])

      const dealHistory = yield* audit.ofRow(tenant, "deals", deal.id)
      expect(dealHistory.map((h) => [h.op, h.actor, h.viaAgent, h.traceId])).toEqual([
        ["insert", "user:sam", null, null],
        ["update", "user:sam", "planner", "9a".repeat(16)]
      ])
      expect(dealHistory[1]!.changes).toMatchObject({ stage: { from: "proposal", to: "won" } })
      expect((yield* audit.ofRow(tenant, "companies", acme.id)).length).toBe(1)
      expect((yield* audit.ofRow(tenant, "tenants", tenant)).map((h) => h.op)).toEqual(["insert"])

      const at = new Date("2026-11-01T10:00:00Z")
      const activity = { id: "act-1", kind: "call" as const, contactId: "ct-000001", companyId: acme.id, dealId: deal.id, subject: "Kick-off", occurredAt: at, episodeId: null }
      expect(yield* records.recordActivities(tenant, [activity])).toBe(1)
      expect(yield* records.recordActivities(tenant, [activity])).toBe(0)
      expect(yield* records.activitiesOf(tenant, ContactId.make("ct-000001"), 10)).toEqual([activity])

      expect(yield* records.deleteDeal(tenant, deal.id)).toBe(true)
      expect(yield* records.deleteDeal(tenant, deal.id)).toBe(false)
      expect((yield* audit.ofRow(tenant, "deals", deal.id)).map((h) => h.op)).toEqual(["insert", "update", "delete"])
      expect(yield* records.getCompany(TenantId.make("records-other"), acme.id)).toEqual(Option.none())
    }))

  it.effect("consent and opt-outs update the contact the campaign flow reads, with their history", () =>
    Effect.gen(function* () {
      const consent = yield* Consent.Consent
      const contacts = yield* ContactRepo.ContactRepo
      const [c] = DemoData.contacts(tenant, 1, 5)
      yield* contacts.insertMany(tenant, [{ ...c!, optedOut: false, consent: { voice: false, email: true, sms: false } }])
      const id = c!.id
      expect(yield* consent.record(tenant, id, "voice", "granted", "web form")).toEqual({ optedOut: false, voice: true, email: true, sms: false })
      expect(yield* consent.record(tenant, id, "email", "revoked", "unsubscribe link")).toMatchObject({ email: false })
      expect(yield* consent.record(tenant, id, "all", "opted-out", "call: asked not to be contacted")).toMatchObject({ optedOut: true })
      const snapshot = Option.getOrThrow(yield* contacts.get(tenant, id))
      expect([snapshot.optedOut, snapshot.consent]).toEqual([true, { voice: true, email: false, sms: false }])
      expect((yield* consent.history(tenant, id)).map((h) => `${h.channel}:${h.status}:${h.source}`)).toEqual([
        "voice:granted:web form", "email:revoked:unsubscribe link", "all:opted-out:call: asked not to be contacted"
      ])
      expect((yield* consent.record(tenant, id, "email", "opted-out", "x").pipe(Effect.flip)).reason).toBe("Invalid")
      expect((yield* consent.record(tenant, ContactId.make("nobody"), "sms", "granted", "x").pipe(Effect.flip)).reason).toBe("Invalid")
      expect(yield* consent.current(TenantId.make("records-other"), id)).toEqual(Option.none())
      const audit = yield* AuditLog.AuditLog
      expect((yield* audit.ofRow(tenant, "contacts", id)).map((h) => h.op)).toEqual(["insert", "update", "update", "update"])
    }))
})
