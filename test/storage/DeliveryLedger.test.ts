/**
 * DeliveryLedger against a fresh database on the real Postgres: a key is recorded at most
 * once (sequentially and under concurrent attempts), duplicates read back the original.
 */
import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { CampaignId, ContactId, TenantId } from "../../protocols/Ids.js"
import * as DeliveryLedger from "../../storage/DeliveryLedger.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

const TestLayer = DeliveryLedger.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

const tenant = TenantId.make("acme")
const campaignId = CampaignId.make("cmp-1")

const entry = (key: string, overrides: Partial<DeliveryLedger.NewDelivery> = {}): DeliveryLedger.NewDelivery => ({
  tenantId: tenant,
  idempotencyKey: key,
  campaignId,
  contactId: ContactId.make("ct-000001"),
  channel: "voice",
  recipient: "+155501000",
  subject: null,
  body: "Hi Ava, this is a sandbox call.",
  outcome: "answered",
  detail: "sandbox: answered after 3 rings",
  durationSec: 42.5,
  transcript: "AI: Hello…\nAva: Sure, send me the deck.",
  ...overrides
})

layer(TestLayer, { excludeTestServices: true, timeout: "30 seconds" })("DeliveryLedger (Postgres)", (it) => {
  it.effect("the first record of a key is new; later ones are duplicates returning the original", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const first = yield* ledger.record(entry("cmp-1:ct-000001:voice"))
      expect(first.duplicate).toBe(false)
      expect(first.entry).toMatchObject(entry("cmp-1:ct-000001:voice"))
      expect(first.entry.createdAt).toBeInstanceOf(Date)

      const again = yield* ledger.record(
        entry("cmp-1:ct-000001:voice", { outcome: "failed", body: "different", durationSec: 0, transcript: null })
      )
      expect(again.duplicate).toBe(true)
      expect(again.entry).toEqual(first.entry)
      expect(yield* ledger.get(tenant, "cmp-1:ct-000001:voice")).toEqual(Option.some(first.entry))
      expect(yield* ledger.get(tenant, "missing")).toEqual(Option.none())
    }))

  it.effect("concurrent records of one key: exactly one is new, all see the same entry", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const key = "cmp-1:ct-000002:email"
      const results = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) =>
          ledger.record(entry(key, { channel: "email", subject: `attempt ${i}`, outcome: "sent", transcript: null }))
        ),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => !r.duplicate).length).toBe(1)
      const original = results.find((r) => !r.duplicate)!.entry
      for (const r of results) expect(r.entry).toEqual(original)
    }))

  it.effect("byCampaign lists a campaign's entries oldest first; countByCampaign counts them", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const c = CampaignId.make("cmp-list")
      const keys = ["k-1", "k-2", "k-3"]
      for (const k of keys) yield* ledger.record(entry(k, { campaignId: c, channel: "sms", outcome: "sent" }))
      yield* ledger.record(entry("k-2", { campaignId: c })) // duplicate: not a new row
      const listed = yield* ledger.byCampaign(tenant, c)
      expect(listed.map((e) => e.idempotencyKey)).toEqual(keys)
      expect(listed.every((e) => e.campaignId === c && e.channel === "sms")).toBe(true)
      expect(yield* ledger.countByCampaign(tenant, c)).toBe(3)
      expect(yield* ledger.countByCampaign(tenant, CampaignId.make("none"))).toBe(0)
      expect(yield* ledger.byCampaign(TenantId.make("other"), c)).toEqual([])
    }))

  it.effect("keys are per tenant", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const other = TenantId.make("globex")
      yield* ledger.record(entry("shared-key"))
      const r = yield* ledger.record(entry("shared-key", { tenantId: other }))
      expect(r.duplicate).toBe(false)
      expect(r.entry.tenantId).toBe(other)
    }))
})

layer(TestLayer, { excludeTestServices: true, timeout: "30 seconds" })("DeliveryLedger: records of one turn share a transaction", (it) => {
  it.effect("records of several tenants and keys made at once each get their own answer", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const globex = TenantId.make("globex")
      const calls = [
        ...Array.from({ length: 20 }, (_, i) => entry(`batch-${i}`, { contactId: ContactId.make(`ct-b${i}`) })),
        ...Array.from({ length: 5 }, (_, i) => entry(`batch-${i}`, { tenantId: globex, outcome: "voicemail" })),
        entry("batch-3", { outcome: "failed" }) // a repeat of a key in the same turn
      ]
      const results = yield* Effect.all(calls.map((e) => ledger.record(e)), { concurrency: "unbounded" })
      results.slice(0, 25).forEach((r, i) => {
        expect(r.duplicate).toBe(false)
        expect(r.entry).toMatchObject(calls[i]!)
      })
      expect(results[25]).toEqual({ entry: results[3]!.entry, duplicate: true })
      expect(yield* ledger.countByCampaign(tenant, campaignId)).toBeGreaterThanOrEqual(20)
      expect((yield* ledger.byCampaign(globex, campaignId)).filter((e) => e.idempotencyKey.startsWith("batch-")).map((e) => e.outcome)).toEqual(
        Array(5).fill("voicemail")
      )
      // recorded before: a later turn reads the originals back
      const again = yield* Effect.all([ledger.record(entry("batch-1", { outcome: "failed" })), ledger.record(entry("batch-2"))], {
        concurrency: "unbounded"
      })
      expect(again.map((r) => r.duplicate)).toEqual([true, true])
      expect(again[0]!.entry).toEqual(results[1]!.entry)
    }))

  it.effect("an entry Postgres refuses fails its own call only; the others of its turn are recorded", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const results = yield* Effect.all(
        [
          ledger.record(entry("bad-turn-1")),
          ledger.record(entry("bad-turn-2", { body: "a NUL \u0000 byte Postgres text cannot hold" })),
          ledger.record(entry("bad-turn-3"))
        ].map(Effect.either),
        { concurrency: "unbounded" }
      )
      expect(results.map((r) => r._tag)).toEqual(["Right", "Left", "Right"])
      expect(Option.isSome(yield* ledger.get(tenant, "bad-turn-1"))).toBe(true)
      expect(yield* ledger.get(tenant, "bad-turn-2")).toEqual(Option.none())
      expect(Option.isSome(yield* ledger.get(tenant, "bad-turn-3"))).toBe(true)
    }))

  it.effect("inside a caller's transaction a record is part of it: rolled back with it", () =>
    Effect.gen(function* () {
      const ledger = yield* DeliveryLedger.DeliveryLedger
      const sql = yield* SqlClient.SqlClient
      const failed = yield* Tenancy.within(sql, tenant)(
        Effect.zipRight(ledger.record(entry("in-tx-1")), Effect.fail("abort" as const))
      ).pipe(Effect.flip)
      expect(failed).toBe("abort")
      expect(yield* ledger.get(tenant, "in-tx-1")).toEqual(Option.none())
    }))
})
