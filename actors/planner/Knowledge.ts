/**
 * The knowledge port of the planner's data-query actions: companies, deals, graph
 * traversal, semantic search, activity history and campaign analytics. The offline layer
 * answers from the contact and campaign records (deterministic, bounded samples); the
 * layers over the knowledge graph, vector store and episodic memory (issue 5) implement the
 * same port, so the planner does not change when they arrive.
 */
import { Context, Effect, Layer } from "effect"
import type { AudienceFilter, ContactSnapshot } from "../../protocols/Campaign.js"
import type { TenantId } from "../../protocols/Ids.js"
import { hash32 } from "../../protocols/Subjects.js"
import { CampaignRepo } from "../../storage/CampaignRepo.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import type { StorageError } from "../../storage/Errors.js"

/** A company as the planner sees it. */
export interface CompanyView {
  readonly company: string
  readonly industry: string
  readonly segment: string
  readonly contacts: number
  readonly bestLeadScore: number
}

/** A deal. */
export interface DealView {
  readonly id: string
  readonly company: string
  readonly stage: string
  readonly amountUsd: number
}

/** A node reached by a graph traversal. */
export interface RelatedView {
  readonly id: string
  readonly kind: "contact" | "company"
  readonly name: string
  readonly relation: string
}

/** A semantic-search hit. */
export interface SearchHit {
  readonly contactId: string
  readonly name: string
  readonly title: string
  readonly company: string
  readonly score: number
}

/** One past activity. */
export interface ActivityView {
  readonly at: string
  readonly kind: string
  readonly summary: string
}

/** Outcome figures of past campaigns. */
export interface CampaignStatsView {
  readonly campaigns: number
  readonly targeted: number
  readonly reached: number
  readonly converted: number
}

/** The knowledge port. */
export interface KnowledgeService {
  readonly companies: (tenant: TenantId, filter: AudienceFilter, limit: number) => Effect.Effect<ReadonlyArray<CompanyView>, StorageError>
  readonly deals: (tenant: TenantId, stage: string | null, limit: number) => Effect.Effect<ReadonlyArray<DealView>, StorageError>
  readonly related: (tenant: TenantId, from: string, relation: string, depth: number) => Effect.Effect<ReadonlyArray<RelatedView>, StorageError>
  readonly search: (tenant: TenantId, query: string, limit: number) => Effect.Effect<ReadonlyArray<SearchHit>, StorageError>
  readonly activities: (tenant: TenantId, contactId: string, limit: number) => Effect.Effect<ReadonlyArray<ActivityView>, StorageError>
  readonly campaignStats: (tenant: TenantId, campaignId: string | null) => Effect.Effect<CampaignStatsView, StorageError>
}

/** The knowledge service. */
export class Knowledge extends Context.Tag("nexus/planner/Knowledge")<Knowledge, KnowledgeService>() {}

/** Contacts read for one offline answer at most (keeps every answer bounded). */
export const SAMPLE = 500

const stages = ["discovery", "qualification", "proposal", "negotiation"] as const
const words = (s: string) => s.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 2)

/** The offline knowledge layer over the contact and campaign records. */
export const layerOffline: Layer.Layer<Knowledge, never, ContactRepo | CampaignRepo> = Layer.effect(
  Knowledge,
  Effect.gen(function* () {
    const contacts = yield* ContactRepo
    const campaigns = yield* CampaignRepo
    const sample = (tenant: TenantId, filter: AudienceFilter) =>
      Effect.map(contacts.window(tenant, filter, null, SAMPLE), (w) => w.contacts)

    const companiesOf = (cs: ReadonlyArray<ContactSnapshot>): Array<CompanyView> => {
      const by = new Map<string, CompanyView>()
      for (const c of cs) {
        const v = by.get(c.company)
        by.set(c.company, {
          company: c.company,
          industry: c.industry,
          segment: c.segment,
          contacts: (v?.contacts ?? 0) + 1,
          bestLeadScore: Math.max(v?.bestLeadScore ?? 0, c.leadScore)
        })
      }
      return [...by.values()].sort((a, b) => b.bestLeadScore - a.bestLeadScore || a.company.localeCompare(b.company))
    }

    return {
      companies: (tenant, filter, limit) => Effect.map(sample(tenant, filter), (cs) => companiesOf(cs).slice(0, limit)),
      deals: (tenant, stage, limit) =>
        Effect.map(sample(tenant, { minLeadScore: 70 }), (cs) =>
          companiesOf(cs)
            .map((c) => ({
              id: `deal-${hash32(c.company).toString(36)}`,
              company: c.company,
              stage: stages[hash32(c.company) % stages.length]!,
              amountUsd: 5_000 + (hash32(`${c.company}/amount`) % 20) * 2_500
            }))
            .filter((d) => stage === null || d.stage === stage)
            .slice(0, limit)
        ),
      related: (tenant, from, relation, depth) =>
        Effect.gen(function* () {
          const all = yield* sample(tenant, {})
          const start = all.find((c) => c.id === from || c.company === from)
          if (start === undefined) return []
          const colleagues = all
            .filter((c) => c.company === start.company && c.id !== start.id)
            .map((c) => ({ id: c.id, kind: "contact" as const, name: `${c.name} (${c.title})`, relation: "colleague_of" }))
          const similar = depth > 1 || relation === "similar_company"
            ? companiesOf(all.filter((c) => c.industry === start.industry && c.segment === start.segment && c.company !== start.company))
                .slice(0, 5)
                .map((c) => ({ id: c.company, kind: "company" as const, name: c.company, relation: "similar_company" }))
            : []
          const self = { id: start.company, kind: "company" as const, name: start.company, relation: "works_at" }
          return [self, ...colleagues, ...similar].filter((r) => relation === "any" || r.relation === relation).slice(0, 20)
        }),
      search: (tenant, query, limit) =>
        Effect.map(sample(tenant, {}), (cs) => {
          const q = new Set(words(query))
          return cs
            .map((c) => {
              const text = words(`${c.title} ${c.industry} ${c.company} ${c.segment} ${c.region}`)
              const overlap = text.filter((w) => q.has(w)).length
              return { contactId: c.id, name: c.name, title: c.title, company: c.company, score: overlap / Math.max(1, q.size) }
            })
            .filter((h) => h.score > 0)
            .sort((a, b) => b.score - a.score || a.contactId.localeCompare(b.contactId))
            .slice(0, limit)
        }),
      activities: () => Effect.succeed([]),
      campaignStats: (tenant, campaignId) =>
        Effect.map(campaigns.list(tenant), (list) => {
          const done = list.filter((c) => (campaignId === null || c.id === campaignId) && c.summary !== null)
          return {
            campaigns: done.length,
            targeted: done.reduce((n, c) => n + c.summary!.counts.targeted, 0),
            reached: done.reduce((n, c) => n + c.summary!.counts.reached, 0),
            converted: done.reduce((n, c) => n + c.summary!.counts.converted, 0)
          }
        })
    } satisfies KnowledgeService
  })
)
