/**
 * Benchmark of the knowledge store on its embedded adapters (the default run: PGlite in
 * memory, or the Postgres server of `DATABASE_URL`): a generated tenant of contacts,
 * companies, deals and activities (each activity an episode), with its graph and contact
 * vectors; then, one query at a time, latency percentiles of
 *
 * - semantic search: embed a query (offline hashed embedding) and search contact vectors;
 * - graph traversal: warmest introduction path between two contacts (4 hops), and a
 *   2-hop neighbourhood;
 * - episodic retrieval: recall a contact's episodes ranked by relevance and recency;
 *
 * against the NexusCRM paper's figures (semantic search 67/110 ms, graph traversal
 * 45/89 ms p50/p99), and the ingestion rate of inbound events through the full pipeline.
 *
 * Sizes: `--full` 50,000 contacts, 10,000 deals, 100,000 activities; default a tenth.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { ContactId, TenantId } from "../../protocols/Ids.js"
import { EventId, type InboundEvent } from "../../protocols/Inbound.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as DemoData from "../../storage/DemoData.js"
import { Embeddings } from "../../storage/Embeddings.js"
import { mentionsOf, type Entities } from "../../storage/Episode.js"
import { EpisodicMemory } from "../../storage/EpisodicMemory.js"
import { extractWithRules } from "../../storage/Extraction.js"
import { Ingestion } from "../../storage/Ingestion.js"
import * as Knowledge from "../../storage/Knowledge.js"
import { type GraphEdge, KnowledgeGraph, nodeId } from "../../storage/KnowledgeGraph.js"
import { Records } from "../../storage/Records.js"
import * as Tenancy from "../../storage/Tenancy.js"
import { collections, VectorStore } from "../../storage/VectorStore.js"
import { now, percentile, row, type Row, type Suite } from "../Bench.js"

/** The NexusCRM paper's latencies (ms): p50, p99. */
const paper = { search: [67, 110], traversal: [45, 89] } as const

const products = ["Nexus CRM", "Nexus Voice", "Nexus Analytics", "Nexus Sequences", "Nexus API"]
const phrases = [
  "Thanks for the call, the demo of {p} looked good.",
  "Honestly the price is too high for us this year.",
  "We already use a competitor for this, happy with our current vendor.",
  "Security and compliance need to review {p} first.",
  "Could you send a proposal for {p}?",
  "Let's schedule a demo with the team next week.",
  "Not the right time, maybe next quarter.",
  "The integration with our ERP is the open question.",
  "The pricing concern is resolved after the discount."
]

/** A seeded PRNG (mulberry32). */
const prng = (seed: number) => {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const chunks = <A>(items: ReadonlyArray<A>, size: number) =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size))

const fmtN = (n: number) => n.toLocaleString("en-US")

/** Generates and loads the tenant; returns how long each part took (ms). */
const load = (tenant: TenantId, sizes: { contacts: number; deals: number; activities: number }) =>
  Effect.gen(function* () {
    const random = prng(42)
    const pick = <A>(xs: ReadonlyArray<A>) => xs[Math.floor(random() * xs.length)]!
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ContactRepo.ContactRepo
    const records = yield* Records
    const graph = yield* KnowledgeGraph
    const vectors = yield* VectorStore
    const embeddings = yield* Embeddings
    const timings: Record<string, number> = {}
    const timed = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const t0 = now()
        const a = yield* effect
        timings[what] = now() - t0
        return a
      })

    const contacts = DemoData.contacts(tenant, sizes.contacts, 7)
    const companyCount = Math.max(1, Math.floor(sizes.contacts / 10))
    const companyOf = (i: number) => `co-${i % companyCount}`
    yield* timed("contacts", repo.insertMany(tenant, contacts))
    yield* timed("companies", records.upsertCompanies(tenant, Array.from({ length: companyCount }, (_, i) => ({
      id: `co-${i}` as never, name: `Company ${i}`, domain: null, industry: pick(DemoData.industries).name, region: pick(DemoData.regions).name, segment: null
    }))))

    yield* timed("graph", Effect.gen(function* () {
      yield* graph.upsertNodes(tenant, [
        ...contacts.map((c) => ({ id: nodeId("contact", c.id), kind: "contact" as const, name: c.name, props: {} })),
        ...Array.from({ length: companyCount }, (_, i) => ({ id: nodeId("company", `co-${i}`), kind: "company" as const, name: `Company ${i}`, props: {} })),
        ...products.map((p) => ({ id: nodeId("product", p), kind: "product" as const, name: p, props: {} }))
      ])
      const edges: Array<GraphEdge> = []
      contacts.forEach((c, i) => {
        const me = nodeId("contact", c.id)
        edges.push({ src: me, type: "WORKS_AT", dst: nodeId("company", companyOf(i)), weight: 1, props: {} })
        if (i >= companyCount) edges.push({ src: me, type: "REPORTS_TO", dst: nodeId("contact", contacts[i - companyCount]!.id), weight: 0.8, props: {} })
        for (let k = 0; k < 3; k++) {
          const other = contacts[Math.floor(random() * contacts.length)]!
          if (other.id !== c.id) edges.push({ src: me, type: "KNOWS", dst: nodeId("contact", other.id), weight: 0.2 + 0.8 * random(), props: {} })
        }
        if (random() < 0.3) edges.push({ src: me, type: "INTERESTED_IN", dst: nodeId("product", pick(products)), weight: 0.6, props: {} })
      })
      for (const batch of chunks(edges, 5000)) yield* graph.upsertEdges(tenant, batch)
      return edges.length
    }))

    yield* timed("deals", records.upsertDeals(tenant, Array.from({ length: sizes.deals }, (_, i) => ({
      id: `dl-${i}` as never, name: `Deal ${i}`, companyId: companyOf(i) as never, contactId: contacts[i % contacts.length]!.id,
      stage: pick(["prospect", "qualified", "proposal", "negotiation", "won", "lost"] as const), amount: Math.round(random() * 100_000),
      currency: "USD", products: [pick(products)], expectedClose: null
    }))))

    yield* timed("vectors", Effect.forEach(chunks(contacts, 2000), (batch) =>
      Effect.flatMap(embeddings.embed(batch.map((c) => `${c.name}, ${c.title} at ${c.company}. ${c.industry}, ${c.segment}, ${c.region}.`)), (vs) =>
        vectors.upsert(tenant, collections.contacts, batch.map((c, k) => ({
          id: c.id, vector: vs[k]!, payload: { name: c.name, title: c.title, company: c.company, segment: c.segment, industry: c.industry }
        })))
      ), { discard: true }))

    // activities and their episodes, written in bulk (the per-event path is measured below)
    const day = 86_400_000
    const end = Date.now()
    yield* timed("activities", Effect.forEach(chunks(Array.from({ length: sizes.activities }, (_, i) => i), 1000), (batch) =>
      Tenancy.withTenant(tenant)(Effect.gen(function* () {
        const rows = batch.map((i) => {
          const contact = contacts[Math.floor(random() * contacts.length)]!
          const p = pick(products)
          const content = [pick(phrases), pick(phrases)].map((s) => s.replace("{p}", p)).join(" ")
          const entities: Entities = extractWithRules(content)
          return { i, contact, content, entities, at: new Date(end - Math.floor(random() * 120) * day), channel: pick(["email", "voice", "meeting", "sms"] as const) }
        })
        yield* sql`INSERT INTO episodes ${sql.insert(rows.map((r) => ({
          tenant_id: tenant, id: `ep-${r.i}`, channel: r.channel, direction: "inbound", occurred_at: r.at, content: r.content,
          entities: JSON.stringify(r.entities), participants: JSON.stringify([{ kind: "contact", id: r.contact.id }]), source: "bench", recorded_by: "bench"
        })))}`
        yield* sql`INSERT INTO episode_contacts ${sql.insert(rows.map((r) => ({ tenant_id: tenant, contact_id: r.contact.id, occurred_at: r.at, episode_id: `ep-${r.i}` })))}`
        const mentions = rows.flatMap((r) => mentionsOf(r.entities).map(([kind, term, label]) => ({ tenant_id: tenant, episode_id: `ep-${r.i}`, kind, term, label, occurred_at: r.at })))
        if (mentions.length > 0) yield* sql`INSERT INTO episode_mentions ${sql.insert(mentions)}`
        yield* sql`INSERT INTO activities ${sql.insert(rows.map((r) => ({
          tenant_id: tenant, id: `act-${r.i}`, kind: r.channel === "voice" ? "call" : r.channel, contact_id: r.contact.id, subject: r.content.slice(0, 60), occurred_at: r.at, episode_id: `ep-${r.i}`
        })))}`
      })), { discard: true }))
    // planner statistics for the freshly loaded tables (the owner's right: the app role may not)
    yield* sql.withTransaction(Effect.zipRight(sql`SET LOCAL ROLE NONE`, sql`ANALYZE`)).pipe(Effect.ignore)
    return { contacts, timings }
  })

/** Runs `op` `n` times one after another; returns the latencies (ms). */
const sample = <E, R>(n: number, op: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function* () {
    const out: Array<number> = []
    for (let i = 0; i < n; i++) {
      const t0 = now()
      yield* op(i)
      out.push(now() - t0)
    }
    return out
  })

const latencyRows = (name: string, sizes: string, samples: ReadonlyArray<number>, target?: readonly [number, number]): Array<Row> =>
  (["p50", "p99"] as const).map((p, k) => {
    const value = percentile(samples, p === "p50" ? 50 : 99)
    return target === undefined
      ? row(`knowledge: ${name} ${p} (${sizes})`, value, "ms")
      : row(`knowledge: ${name} ${p} (${sizes})`, value, "ms", { baseline: target[k]!, target: `<= ${target[k]} ms (paper)`, met: value <= target[k]! })
  })

const suite: Suite = {
  name: "knowledge",
  run: async ({ full }) => {
    const sizes = full ? { contacts: 50_000, deals: 10_000, activities: 100_000 } : { contacts: 5_000, deals: 1_000, activities: 10_000 }
    const queries = full ? 300 : 100
    const url = process.env.DATABASE_URL
    const engine = url ? "Postgres" : "PGlite"
    const label = `${fmtN(sizes.contacts)} contacts, ${fmtN(sizes.deals)} deals, ${fmtN(sizes.activities)} activities, ${engine}`
    const database = url ? Database.layerUrl(url) : Database.layerEmbedded(Database.memory)
    const env = Knowledge.layerEmbedded.pipe(Layer.provideMerge(ContactRepo.layer), Layer.provideMerge(database))
    const tenant = TenantId.make(`bench-${Date.now().toString(36)}`)

    const program = Effect.gen(function* () {
      const t0 = now()
      const { contacts, timings } = yield* load(tenant, sizes)
      const loadMs = now() - t0
      const random = prng(7)
      const anyContact = () => contacts[Math.floor(random() * contacts.length)]!.id
      const embeddings = yield* Embeddings
      const vectors = yield* VectorStore
      const graph = yield* KnowledgeGraph
      const memory = yield* EpisodicMemory
      const ingestion = yield* Ingestion
      const query = (i: number) => `${pick(DemoData.titles, i).title} in ${pick(DemoData.industries, i * 7).name}, ${pick(DemoData.regions, i * 3).name}`

      const cold = yield* sample(1, () => Effect.flatMap(embeddings.embed(["warm up"]), ([v]) => vectors.search(tenant, collections.contacts, v!, { limit: 10 })))
      const search = yield* sample(queries, (i) =>
        Effect.flatMap(embeddings.embed([query(i)]), ([v]) => vectors.search(tenant, collections.contacts, v!, { limit: 10 })))
      const filtered = yield* sample(queries, (i) =>
        Effect.flatMap(embeddings.embed([query(i)]), ([v]) =>
          vectors.search(tenant, collections.contacts, v!, { limit: 10, minScore: 0.3, filter: { must: { segment: "enterprise" } } })))
      const paths = yield* sample(queries, () => graph.introductionPath(tenant, nodeId("contact", anyContact()), nodeId("contact", anyContact()), { maxHops: 4 }))
      const hoods = yield* sample(queries, () => graph.neighbourhood(tenant, nodeId("contact", anyContact()), { hops: 2, limit: 50 }))
      const recalls = yield* sample(queries, (i) => memory.recall(tenant, { contactId: ContactId.make(anyContact()), query: i % 2 ? "price proposal" : "demo next week", limit: 10 }))
      const mentions = yield* sample(Math.ceil(queries / 3), (i) => memory.lastMention(tenant, products[i % products.length]!))

      const events: Array<InboundEvent> = Array.from({ length: full ? 2000 : 200 }, (_, i) => ({
        type: "inbound.email-received",
        payload: {
          eventId: EventId.make(`bench-em-${i}`), contactId: ContactId.make(anyContact()), from: "someone@example.example",
          subject: `Re: ${pick(products, i)}`, body: `${pick(phrases, i)} ${pick(phrases, i * 5)}`.replace(/\{p\}/g, pick(products, i)),
          receivedAt: Date.now() - i * 60_000, campaignId: null
        }
      }))
      const t1 = now()
      yield* Effect.forEach(events, (e) => ingestion.ingest(tenant, e), { concurrency: 4, discard: true })
      const ingestSec = (now() - t1) / 1000

      return [
        row(`knowledge: load ${label}`, loadMs / 1000, "s"),
        ...Object.entries(timings).map(([k, ms]) => row(`knowledge: load ${k}`, ms / 1000, "s")),
        row(`knowledge: semantic search first query, loads the index (${fmtN(sizes.contacts)} vectors)`, cold[0]!, "ms"),
        ...latencyRows("semantic search", `${fmtN(sizes.contacts)} contact vectors, ${engine}`, search, paper.search),
        ...latencyRows("filtered semantic search", `${fmtN(sizes.contacts)} contact vectors, ${engine}`, filtered, paper.search),
        ...latencyRows("graph traversal: introduction path, 4 hops", `${fmtN(sizes.contacts)} contacts, ${engine}`, paths, paper.traversal),
        ...latencyRows("graph traversal: 2-hop neighbourhood", `${fmtN(sizes.contacts)} contacts, ${engine}`, hoods, paper.traversal),
        ...latencyRows("episodic retrieval: recall", `${fmtN(sizes.activities)} episodes, ${engine}`, recalls),
        ...latencyRows("episodic retrieval: last mention, tenant-wide", `${fmtN(sizes.activities)} episodes, ${engine}`, mentions),
        row(`knowledge: ingestion rate, inbound emails through the full pipeline (${fmtN(events.length)} events, ${engine})`, events.length / ingestSec, "events/s")
      ]
    })
    return Effect.runPromise(Effect.scoped(Effect.provide(program, env)))
  }
}

const pick = <A>(xs: ReadonlyArray<A>, i: number): A => xs[Math.abs(i) % xs.length]!

export default suite
