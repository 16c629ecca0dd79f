/**
 * The planner's knowledge port over the knowledge store (Postgres, embedded graph and
 * vectors): graph traversal, semantic search and activity history answer from ingested
 * knowledge; a tenant with nothing ingested gets exactly the offline answers.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Knowledge from "../../../actors/planner/Knowledge.js"
import * as KnowledgeStore from "../../../actors/planner/KnowledgeStore.js"
import { TenantId } from "../../../protocols/Ids.js"
import * as CampaignRepo from "../../../storage/CampaignRepo.js"
import * as DemoData from "../../../storage/DemoData.js"
import { Ingestion } from "../../../storage/Ingestion.js"
import * as Fixture from "../../fixtures/Knowledge.js"
import * as Postgres from "../../fixtures/Postgres.js"

const Env = KnowledgeStore.layerStore.pipe(
  Layer.provideMerge(CampaignRepo.layer),
  Layer.provideMerge(Fixture.layer(Postgres.layerFresh))
)
const { ids } = Fixture

layer(Env, { excludeTestServices: true })("planner knowledge over the store", (it) => {
  it.effect("answers graph, search and activity questions from ingested knowledge", () =>
    Effect.gen(function* () {
      const tenant = TenantId.make("planner-store")
      const ingestion = yield* Ingestion
      for (const e of Fixture.sampleEvents(Date.parse("2026-11-20T12:00:00Z"))) yield* ingestion.ingest(tenant, e)
      const knowledge = yield* Knowledge.Knowledge

      const colleagues = yield* knowledge.related(tenant, ids.ben, "colleague_of", 1)
      expect(colleagues.map((r) => r.id).sort()).toEqual([ids.ava, ids.avaDup].sort())
      expect((yield* knowledge.related(tenant, ids.ben, "works_at", 1)).map((r) => [r.id, r.relation])).toEqual([[ids.acme, "works_at"]])
      const hits = yield* knowledge.search(tenant, "Ben Okafor VP Sales", 2)
      expect(hits[0]!.contactId).toBe(ids.ben)
      const acts = yield* knowledge.activities(tenant, ids.ben, 5)
      expect(acts.map((a) => a.kind)).toEqual(["meeting internal (held)", "voice outbound (answered)"])
    }))

  it.effect("a tenant with nothing ingested gets the offline answers", () =>
    Effect.gen(function* () {
      const tenant = TenantId.make("planner-offline")
      yield* DemoData.load(tenant, 60, 3)
      const store = yield* Knowledge.Knowledge
      const offline = yield* Effect.provide(Knowledge.Knowledge, Knowledge.layerOffline)
      expect(yield* store.search(tenant, "CTO SaaS Europe", 5)).toEqual(yield* offline.search(tenant, "CTO SaaS Europe", 5))
      const first = DemoData.contactId(1)
      expect(yield* store.related(tenant, first, "any", 1)).toEqual(yield* offline.related(tenant, first, "any", 1))
      expect(yield* store.companies(tenant, {}, 3)).toEqual(yield* offline.companies(tenant, {}, 3))
    }))
})
