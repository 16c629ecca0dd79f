/**
 * Ingestion of external events (`protocols/Inbound.ts`) into the three knowledge layers:
 * records and episodes in Postgres, edges in the knowledge graph, vectors in the vector
 * store. Idempotent twice over: an event id already processed is skipped outright, and
 * every write is an upsert that changes nothing when repeated, so a run interrupted half
 * way and redelivered completes without doubling anything. Vectors carry the hash of the
 * text they embed and are not recomputed for the same text.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option } from "effect"
import { createHash } from "node:crypto"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import type { InboundEvent } from "../protocols/Inbound.js"
import { ContactRepo } from "./ContactRepo.js"
import { Embeddings } from "./Embeddings.js"
import type { NewEpisode } from "./Episode.js"
import { EpisodicMemory } from "./EpisodicMemory.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import { EntityExtractor } from "./Extraction.js"
import * as Graph from "./internal/IngestGraph.js"
import { KnowledgeGraph } from "./KnowledgeGraph.js"
import { Records } from "./Records.js"
import * as Tenancy from "./Tenancy.js"
import { collections, type Payload, VectorStore } from "./VectorStore.js"

/** What one ingestion did. */
export interface IngestResult {
  /** `duplicate`: the event id was processed before and nothing was written. */
  readonly status: "ingested" | "duplicate"
  readonly episodeId: string | null
  /** Contacts found to be near-duplicates of an upserted contact (linked `SIMILAR_TO`). */
  readonly duplicatesOf: ReadonlyArray<string>
}

/** The ingestion service. */
export interface IngestionShape {
  readonly ingest: (tenant: TenantId, event: InboundEvent) => Effect.Effect<IngestResult, StorageError>
  /** Whether an event id was already processed. */
  readonly processed: (tenant: TenantId, eventId: string) => Effect.Effect<boolean, StorageError>
}

/** The ingestion service tag. */
export class Ingestion extends Context.Tag("nexus/storage/Ingestion")<Ingestion, IngestionShape>() {}

/** Characters of an episode's text that are embedded. */
const EMBED_CHARS = 8_000

const hashOf = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 32)

/** Builds the service; ensures the vector collections exist at the embedding dimension. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const records = yield* Records
  const contacts = yield* ContactRepo
  const memory = yield* EpisodicMemory
  const graph = yield* KnowledgeGraph
  const vectors = yield* VectorStore
  const embeddings = yield* Embeddings
  const extractor = yield* EntityExtractor
  yield* vectors.ensureCollection(collections.contacts, embeddings.dimension)
  yield* vectors.ensureCollection(collections.conversations, embeddings.dimension)
  const edges = Graph.make(graph)

  // Embeds and stores `text` under `id` unless the point already holds the same text.
  const embedOnce = (tenant: TenantId, collection: string, id: string, text: string, payload: Payload) =>
    Effect.gen(function* () {
      const textHash = hashOf(text)
      const existing = yield* vectors.get(tenant, collection, id)
      if (Option.isSome(existing) && existing.value.payload.textHash === textHash) return
      const [vector] = yield* embeddings.embed([text])
      yield* vectors.upsert(tenant, collection, [{ id, vector: vector!, payload: { ...payload, textHash } }])
    })

  const contactName = (tenant: TenantId, id: ContactId) =>
    Effect.map(contacts.get(tenant, id), Option.match({ onNone: () => id as string, onSome: (c) => c.name }))

  // An interaction: the episode, its activity, INTERESTED_IN edges to products it names, its vector.
  const interaction = (tenant: TenantId, episode: NewEpisode, contactIds: ReadonlyArray<ContactId>) =>
    Effect.gen(function* () {
      yield* memory.record(tenant, episode)
      yield* records.recordActivities(tenant, contactIds.map((contactId, i) => ({
        id: i === 0 ? `act-${episode.id}` : `act-${episode.id}-${i}`,
        kind: episode.channel === "voice" ? "call" : episode.channel === "meeting" ? "meeting" : episode.channel === "sms" ? "sms" : "email",
        contactId,
        companyId: null,
        dealId: episode.dealId,
        subject: episode.summary ?? episode.content.slice(0, 120),
        occurredAt: episode.occurredAt,
        episodeId: episode.id
      })))
      for (const id of contactIds) {
        yield* edges.contact(tenant, id, yield* contactName(tenant, id))
        yield* edges.interestedIn(tenant, id, episode.entities.products)
      }
      const text = `${episode.summary ?? ""}\n${episode.content}`.trim().slice(0, EMBED_CHARS)
      yield* embedOnce(tenant, collections.conversations, episode.id, text, {
        contactIds: [...contactIds],
        channel: episode.channel,
        occurredAt: episode.occurredAt.getTime(),
        summary: (episode.summary ?? episode.content).slice(0, 200)
      })
      return episode.id
    })

  const episodeOf = Effect.fn("Ingestion.episodeOf")(function* (event: InboundEvent) {
    switch (event.type) {
      case "inbound.email-received": {
        const p = event.payload
        const content = `Subject: ${p.subject}\n\n${p.body}`
        return {
          contactIds: [p.contactId],
          episode: {
            id: `email-${p.eventId}`, channel: "email", direction: "inbound", occurredAt: new Date(p.receivedAt), durationSec: null,
            outcome: "replied", summary: p.subject, content, entities: yield* extractor.extract(content),
            participants: [{ kind: "contact", id: p.contactId, role: "sender" }], campaignId: p.campaignId, dealId: null, source: event.type
          } satisfies NewEpisode
        }
      }
      case "inbound.call-ended": {
        const p = event.payload
        const content = p.transcript ?? p.summary ?? `Call ${p.outcome}.`
        return {
          contactIds: [p.contactId],
          episode: {
            id: `call-${p.eventId}`, channel: "voice", direction: p.direction, occurredAt: new Date(p.startedAt),
            durationSec: Math.max(0, (p.endedAt - p.startedAt) / 1000), outcome: p.outcome, summary: p.summary, content,
            entities: yield* extractor.extract(`${p.summary ?? ""}\n${p.transcript ?? ""}`),
            participants: [{ kind: "contact", id: p.contactId }], campaignId: p.campaignId, dealId: null, source: event.type
          } satisfies NewEpisode
        }
      }
      case "inbound.meeting-held": {
        const p = event.payload
        const content = `${p.title}\n\n${p.notes}`
        return {
          contactIds: [...p.contactIds],
          episode: {
            id: `meeting-${p.eventId}`, channel: "meeting", direction: "internal", occurredAt: new Date(p.startedAt),
            durationSec: p.durationMin * 60, outcome: "held", summary: p.title, content, entities: yield* extractor.extract(content),
            participants: p.contactIds.map((id) => ({ kind: "contact" as const, id, role: "attendee" })), campaignId: null,
            dealId: p.dealId, source: event.type
          } satisfies NewEpisode,
          meeting: { id: p.meetingId, title: p.title }
        }
      }
      default:
        return undefined
    }
  })

  const recordChange = (tenant: TenantId, event: Extract<InboundEvent, { type: "inbound.crm-record-changed" }>) =>
    Effect.gen(function* () {
      const change = event.payload.change
      switch (change._tag) {
        case "ContactUpserted": {
          const { companyId, reportsTo, referredBy, ...snapshot } = change.contact
          yield* contacts.insertMany(tenant, [snapshot])
          yield* records.setContactCompany(tenant, snapshot.id, companyId)
          yield* edges.contactRecord(tenant, change.contact, companyId === null ? Option.none() : yield* records.getCompany(tenant, companyId))
          const profile = `${snapshot.name}, ${snapshot.title} at ${snapshot.company}. ${snapshot.industry}, ${snapshot.segment}, ${snapshot.region}.`
          yield* embedOnce(tenant, collections.contacts, snapshot.id, profile, {
            name: snapshot.name, company: snapshot.company, title: snapshot.title, industry: snapshot.industry,
            segment: snapshot.segment, region: snapshot.region
          })
          const dups = yield* vectors.nearDuplicates(tenant, collections.contacts, snapshot.id)
          yield* edges.similar(tenant, snapshot.id, dups)
          return dups.map((d) => d.id)
        }
        case "CompanyUpserted": {
          const { competitors, partners, ...company } = change.company
          yield* records.upsertCompanies(tenant, [company])
          yield* edges.companyRecord(tenant, change.company)
          return []
        }
        case "DealUpserted":
          yield* records.upsertDeals(tenant, [change.deal])
          yield* edges.dealRecord(tenant, change.deal)
          return []
        case "ContactDeleted":
          yield* records.deleteContact(tenant, change.contactId)
          yield* graph.removeNode(tenant, Graph.ids.contact(change.contactId))
          yield* vectors.remove(tenant, collections.contacts, [change.contactId])
          return []
        case "CompanyDeleted":
          yield* records.deleteCompany(tenant, change.companyId)
          yield* graph.removeNode(tenant, Graph.ids.company(change.companyId))
          return []
        case "DealDeleted":
          yield* records.deleteDeal(tenant, change.dealId)
          yield* graph.removeNode(tenant, Graph.ids.deal(change.dealId))
          return []
      }
    })

  const processed = Effect.fn("Ingestion.processed")(
    function* (tenant: TenantId, eventId: string) {
      const rows = yield* sql`SELECT 1 FROM ingested_events WHERE tenant_id = ${tenant} AND event_id = ${eventId}`
      return rows.length > 0
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine("Ingestion.processed")))
  )

  // One tenant transaction around the whole event: the Postgres writes (records, episodes and,
  // with the embedded backends, edges and vectors) commit together or not at all, in one
  // round trip each. External backends (Neo4j, Qdrant) are written as the steps run.
  const ingest = Effect.fn("Ingestion.ingest")(function* (tenant: TenantId, event: InboundEvent) {
    return yield* Tenancy.within(sql, tenant)(ingestOne(tenant, event)).pipe(Effect.mapError(Errors.refine("Ingestion.ingest")))
  })

  const ingestOne = (tenant: TenantId, event: InboundEvent) => Effect.gen(function* () {
    const eventId = event.payload.eventId
    if (yield* processed(tenant, eventId)) return { status: "duplicate", episodeId: null, duplicatesOf: [] } satisfies IngestResult
    let episodeId: string | null = null
    let duplicatesOf: ReadonlyArray<string> = []
    if (event.type === "inbound.crm-record-changed") {
      duplicatesOf = yield* recordChange(tenant, event)
    } else {
      const made = (yield* episodeOf(event))!
      episodeId = yield* interaction(tenant, made.episode, made.contactIds)
      if ("meeting" in made && made.meeting !== undefined) {
        yield* edges.meeting(tenant, made.meeting.id, made.meeting.title, made.contactIds)
      }
    }
    // last: only a complete ingestion is marked, so a redelivery after a crash finishes the work
    const actor = yield* Tenancy.currentActor
    yield* Tenancy.within(sql, tenant)(sql`
      INSERT INTO ingested_events (tenant_id, event_id, type, trace_id) VALUES (${tenant}, ${eventId}, ${event.type}, ${actor.traceId})
      ON CONFLICT DO NOTHING`).pipe(Effect.mapError(Errors.refine("Ingestion.mark")))
    return { status: "ingested", episodeId, duplicatesOf } satisfies IngestResult
  })

  return { ingest, processed } satisfies IngestionShape
})

/** The ingestion service over the stores it writes to. */
export const layer = Layer.effect(Ingestion, make)
