/**
 * The planner's knowledge port (`Knowledge.ts`) over the triple-layer knowledge store of
 * `storage/`: graph traversal from the knowledge graph, semantic search from the contact
 * vectors (offline or OpenAI embeddings), activity history from the episodic memory and
 * records, deals from the records. Where the store knows nothing yet about a tenant (no
 * contact vectors, no graph node, no deals) it answers as the offline layer does, so a
 * tenant that was never ingested plans exactly as before.
 */
import { Effect, Layer, Option } from "effect"
import type { ContactId, TenantId } from "../../protocols/Ids.js"
import type { CampaignRepo } from "../../storage/CampaignRepo.js"
import type { ContactRepo } from "../../storage/ContactRepo.js"
import { Embeddings } from "../../storage/Embeddings.js"
import { EpisodicMemory } from "../../storage/EpisodicMemory.js"
import { KnowledgeGraph, nodeId, type RelationType } from "../../storage/KnowledgeGraph.js"
import { collections, VectorStore } from "../../storage/VectorStore.js"
import { Knowledge, type KnowledgeService, layerOffline, type RelatedView } from "./Knowledge.js"

/** The graph relationships each planner relation follows. */
const followed: Readonly<Record<string, ReadonlyArray<RelationType>>> = {
  works_at: ["WORKS_AT"],
  colleague_of: ["WORKS_AT"],
  similar_company: ["COMPETES_WITH", "PARTNERS_WITH", "SIMILAR_TO"],
  any: ["WORKS_AT", "REPORTS_TO", "KNOWS", "REFERRED_BY", "COMPETES_WITH", "PARTNERS_WITH", "SIMILAR_TO"]
}

const bare = (id: string) => id.slice(id.indexOf(":") + 1)

/** The store-backed knowledge layer (offline answers where the store has none). */
export const layerStore: Layer.Layer<
  Knowledge,
  never,
  ContactRepo | CampaignRepo | KnowledgeGraph | VectorStore | Embeddings | EpisodicMemory
> = Layer.effect(
  Knowledge,
  Effect.gen(function* () {
    const offline = yield* Effect.provide(Knowledge, layerOffline)
    const graph = yield* KnowledgeGraph
    const vectors = yield* VectorStore
    const embeddings = yield* Embeddings
    const memory = yield* EpisodicMemory

    const related: KnowledgeService["related"] = (tenant: TenantId, from: string, relation: string, depth: number) =>
      Effect.gen(function* () {
        // `from` names a contact id or a company id
        const contact = yield* graph.getNode(tenant, nodeId("contact", from))
        const startId = Option.isSome(contact) ? contact.value.id : nodeId("company", from)
        const hood = yield* graph.neighbourhood(tenant, startId, {
          hops: Math.min(2, Math.max(1, depth + (relation === "colleague_of" ? 1 : 0))),
          types: followed[relation] ?? followed.any!,
          limit: 40
        })
        if (Option.isNone(hood)) return yield* offline.related(tenant, from, relation, depth)
        const out: Array<RelatedView> = []
        for (const { node, distance } of hood.value.nodes) {
          if (node.kind !== "contact" && node.kind !== "company") continue
          const rel = node.kind === "company"
            ? distance === 1 && startId.startsWith("contact:") ? "works_at" : "similar_company"
            : "colleague_of"
          if (relation === "any" || rel === relation) out.push({ id: bare(node.id), kind: node.kind, name: node.name, relation: rel })
        }
        return out.slice(0, 20)
      })

    const search: KnowledgeService["search"] = (tenant, query, limit) =>
      Effect.gen(function* () {
        if ((yield* vectors.count(tenant, collections.contacts)) === 0) return yield* offline.search(tenant, query, limit)
        const [v] = yield* embeddings.embed([query])
        const hits = yield* vectors.search(tenant, collections.contacts, v!, { limit, minScore: 0.05 })
        return hits.map((h) => ({
          contactId: h.id,
          name: String(h.payload.name ?? h.id),
          title: String(h.payload.title ?? ""),
          company: String(h.payload.company ?? ""),
          score: h.score
        }))
      })

    const activities: KnowledgeService["activities"] = (tenant, contactId, limit) =>
      Effect.map(memory.recent(tenant, contactId as ContactId, limit), (episodes) =>
        episodes.map((e) => ({
          at: e.occurredAt.toISOString(),
          kind: `${e.channel} ${e.direction}${e.outcome ? ` (${e.outcome})` : ""}`,
          summary: (e.summary ?? e.content).replace(/\s+/g, " ").slice(0, 200)
        }))
      )

    return { ...offline, related, search, activities } satisfies KnowledgeService
  })
)
