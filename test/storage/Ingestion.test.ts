/**
 * Ingestion on a real Postgres server with the embedded graph and vectors: CRM changes,
 * emails, calls and meetings become records, episodes, graph edges and vectors; a repeated
 * event changes nothing, and neither does a replay of an event whose processing was cut
 * short before it was marked done (every write is idempotent on its own).
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import { EpisodicMemory } from "../../storage/EpisodicMemory.js"
import { Ingestion } from "../../storage/Ingestion.js"
import { KnowledgeGraph, nodeId } from "../../storage/KnowledgeGraph.js"
import { Records } from "../../storage/Records.js"
import * as Tenancy from "../../storage/Tenancy.js"
import { VectorStore } from "../../storage/VectorStore.js"
import * as Knowledge from "../fixtures/Knowledge.js"
import * as Postgres from "../fixtures/Postgres.js"

const tenant = TenantId.make("ingest")
const events = Knowledge.sampleEvents(Date.parse("2026-11-20T12:00:00Z"))
const { ids } = Knowledge
const edgeKeys = (edges: ReadonlyArray<{ src: string; type: string; dst: string }>) => edges.map((e) => `${e.src} ${e.type} ${e.dst}`)

layer(Knowledge.layer(Postgres.layerFresh), { excludeTestServices: true })("Ingestion (Postgres, embedded graph and vectors)", (it) => {
  it.effect("turns CRM changes and interactions into records, episodes, edges and vectors", () =>
    Effect.gen(function* () {
      const ingestion = yield* Ingestion
      const results = []
      for (const e of events) results.push(yield* ingestion.ingest(tenant, e))
      expect(results.every((r) => r.status === "ingested")).toBe(true)
      expect(results[4]!.duplicatesOf).toEqual([ids.ava]) // the second Ava Smith is the first one again

      const graph = yield* KnowledgeGraph
      const ava = nodeId("contact", ids.ava)
      expect(edgeKeys(yield* graph.edgesOf(tenant, ava))).toEqual(expect.arrayContaining([
        `${ava} WORKS_AT company:co-acme`,
        `${nodeId("contact", ids.ben)} REPORTS_TO ${ava}`,
        `${nodeId("contact", ids.avaDup)} SIMILAR_TO ${ava}`,
        `${ava} INTERESTED_IN product:nexus-voice`,
        `${ava} INTERESTED_IN product:nexus-crm`,
        `${ava} ATTENDED event:mtg-security`,
        `${ava} KNOWS ${nodeId("contact", ids.ben)}`
      ]))
      expect(edgeKeys(yield* graph.edgesOf(tenant, "company:co-acme"))).toEqual(expect.arrayContaining([
        "company:co-acme COMPETES_WITH company:co-globex",
        "company:co-acme LOCATED_IN location:europe",
        "company:co-acme PURCHASED product:nexus-crm",
        "deal:dl-acme-1 BELONGS_TO company:co-acme"
      ]))

      const memory = yield* EpisodicMemory
      const avaEpisodes = yield* memory.recent(tenant, ids.ava, 10)
      expect(avaEpisodes.map((e) => e.id)).toEqual(["meeting-mt-1", "email-em-1"])
      expect(avaEpisodes[1]!.entities).toEqual({
        products: ["Nexus Voice"], objections: [{ topic: "price", status: "raised" }], nextSteps: ["send proposal"]
      })
      expect((yield* memory.openObjections(tenant, ids.ava)).map((o) => o.topic)).toEqual(["price"])
      expect((yield* memory.openObjections(tenant, ids.ben)).map((o) => o.topic)).toEqual(["incumbent competitor"])

      const vectors = yield* VectorStore
      expect(yield* vectors.count(tenant, "contacts")).toBe(3)
      expect(yield* vectors.count(tenant, "conversations")).toBe(3)
      expect((yield* vectors.nearDuplicates(tenant, "contacts", ids.ava)).map((m) => m.id)).toEqual([ids.avaDup])
      const records = yield* Records
      expect(Option.map(yield* records.getDeal(tenant, ids.deal), (d) => d.stage)).toEqual(Option.some("won"))
      expect((yield* records.activitiesOf(tenant, ids.ben, 10)).map((a) => a.kind)).toEqual(["meeting", "call"])
    }))

  it.effect("the same events again change nothing; nor does replaying an event cut short before its mark", () =>
    Effect.gen(function* () {
      const ingestion = yield* Ingestion
      const before = yield* Knowledge.snapshot(tenant)
      expect(before.events.length).toBe(events.length)
      for (const e of events) expect((yield* ingestion.ingest(tenant, e)).status).toBe("duplicate")
      expect(yield* Knowledge.snapshot(tenant)).toEqual(before)

      // forget that two events were processed, as if the process died right before marking them
      const sql = yield* SqlClient.SqlClient
      yield* Tenancy.withTenant(tenant)(sql`DELETE FROM ingested_events WHERE event_id IN ('crm-5', 'mt-1')`)
      for (const e of events) yield* ingestion.ingest(tenant, e)
      expect(yield* Knowledge.snapshot(tenant)).toEqual(before)
    }))
})
