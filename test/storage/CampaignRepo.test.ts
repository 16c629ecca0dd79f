/**
 * CampaignRepo against a fresh database on the real Postgres: idempotent start, one-way
 * transitions out of `running`, summary and spec round trips, listing and tenancy.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { CampaignSummary } from "../../protocols/Campaign.js"
import { CampaignId, TenantId } from "../../protocols/Ids.js"
import * as CampaignRepo from "../../storage/CampaignRepo.js"
import * as Postgres from "../fixtures/Postgres.js"

const TestLayer = CampaignRepo.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

const summary: CampaignSummary = {
  counts: { targeted: 10, dispatched: 10, inProgress: 0, completed: 10, reached: 6, replied: 3, converted: 2, skipped: 3, failed: 1 },
  skippedReasons: { "opted-out": 2, "no-consent": 1 },
  perChannel: { voice: { attempted: 5, reached: 3 }, email: { attempted: 4, reached: 3 } },
  actionsUsed: 9,
  startedAt: 1_700_000_000_000,
  completedAt: 1_700_000_060_000,
  durationMs: 60_000
}

const spec = { audience: { segments: ["enterprise"] }, channels: ["voice", "email"], targetCount: 10, nested: { a: [1, null, "x"] } }

layer(TestLayer, { excludeTestServices: true, timeout: "30 seconds" })("CampaignRepo (Postgres)", (it) => {
  const tenant = TenantId.make("acme")

  it.effect("start is idempotent: the first call creates, later calls change nothing", () =>
    Effect.gen(function* () {
      const repo = yield* CampaignRepo.CampaignRepo
      const id = CampaignId.make("cmp-1")
      expect(yield* repo.start(tenant, { id, name: "Q3 push", goal: "book demos", spec })).toBe(true)
      expect(yield* repo.start(tenant, { id, name: "other", goal: "other", spec: { other: true } })).toBe(false)
      const got = Option.getOrThrow(yield* repo.get(tenant, id))
      expect(got).toMatchObject({ id, name: "Q3 push", goal: "book demos", status: "running", summary: null, reason: null, completedAt: null })
      expect(got.spec).toEqual(spec)
      expect(got.startedAt).toBeInstanceOf(Date)
      expect(Math.abs(got.startedAt.getTime() - Date.now())).toBeLessThan(60_000)
    }))

  it.effect("complete moves running → completed once, with the summary", () =>
    Effect.gen(function* () {
      const repo = yield* CampaignRepo.CampaignRepo
      const id = CampaignId.make("cmp-2")
      expect(yield* repo.complete(tenant, id, summary)).toBe(false) // unknown campaign
      yield* repo.start(tenant, { id, name: "n", goal: "g", spec: null })
      expect(yield* repo.complete(tenant, id, summary)).toBe(true)
      const done = Option.getOrThrow(yield* repo.get(tenant, id))
      expect(done.status).toBe("completed")
      expect(done.summary).toEqual(summary)
      expect(done.spec).toBeNull()
      expect(done.completedAt).toBeInstanceOf(Date)
      // a redelivered completion or a late rejection changes nothing
      const other = { ...summary, actionsUsed: 1 }
      expect(yield* repo.complete(tenant, id, other)).toBe(false)
      expect(yield* repo.reject(tenant, id, "late")).toBe(false)
      expect(Option.getOrThrow(yield* repo.get(tenant, id))).toEqual(done)
    }))

  it.effect("reject moves running → rejected once, with the reason", () =>
    Effect.gen(function* () {
      const repo = yield* CampaignRepo.CampaignRepo
      const id = CampaignId.make("cmp-3")
      yield* repo.start(tenant, { id, name: "n", goal: "g", spec: {} })
      expect(yield* repo.reject(tenant, id, "budget exceeds tenant limit")).toBe(true)
      expect(yield* repo.reject(tenant, id, "again")).toBe(false)
      expect(yield* repo.complete(tenant, id, summary)).toBe(false)
      const got = Option.getOrThrow(yield* repo.get(tenant, id))
      expect(got).toMatchObject({ status: "rejected", reason: "budget exceeds tenant limit", summary: null })
      expect(got.completedAt).toBeInstanceOf(Date)
    }))

  it.effect("list returns the tenant's campaigns newest first; tenants are apart", () =>
    Effect.gen(function* () {
      const repo = yield* CampaignRepo.CampaignRepo
      const t = TenantId.make("lister")
      const ids = ["a-1", "a-2", "a-3"].map((s) => CampaignId.make(s))
      for (const id of ids) yield* repo.start(t, { id, name: id, goal: "g", spec: {} })
      const listed = yield* repo.list(t)
      expect(listed.map((c) => c.id)).toEqual([...ids].reverse())
      expect(yield* repo.list(TenantId.make("nobody"))).toEqual([])
      expect(yield* repo.get(TenantId.make("nobody"), ids[0]!)).toEqual(Option.none())
      // the same campaign id under another tenant is another campaign
      expect(yield* repo.start(TenantId.make("other"), { id: ids[0]!, name: "x", goal: "y", spec: {} })).toBe(true)
      expect((yield* repo.list(t)).length).toBe(3)
    }))

  it.effect("concurrent starts of one id: exactly one wins", () =>
    Effect.gen(function* () {
      const repo = yield* CampaignRepo.CampaignRepo
      const id = CampaignId.make("cmp-race")
      const results = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => repo.start(tenant, { id, name: `n${i}`, goal: "g", spec: { i } })),
        { concurrency: "unbounded" }
      )
      expect(results.filter((r) => r).length).toBe(1)
      const winner = results.indexOf(true)
      expect(Option.getOrThrow(yield* repo.get(tenant, id)).name).toBe(`n${winner}`)
    }))
})
