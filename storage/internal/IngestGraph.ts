/**
 * The graph side of ingestion: which nodes and edges each kind of event implies. Edges that
 * a record defines (works at, reports to, located in…) are replaced to match the record;
 * edges that interactions imply (interested in, knows, attended) only ever strengthen, so
 * events arriving in any order converge. Referenced nodes that do not exist yet are created
 * as placeholders named by their id, and filled in when their own record arrives.
 */
import { Effect, Option } from "effect"
import type { TenantId } from "../../protocols/Ids.js"
import type { CompanyRecord, ContactRecord, Deal } from "../../protocols/Inbound.js"
import type { Company } from "../../protocols/Inbound.js"
import type { StorageError } from "../Errors.js"
import { type GraphEdge, type GraphNode, type KnowledgeGraphShape, nodeId, type NodeKind, type RelationType } from "../KnowledgeGraph.js"
import type { Match } from "../VectorStore.js"

const slug = (s: string) => s.trim().toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "unnamed"

/** Node ids of the records ingestion links. */
export const ids = {
  contact: (id: string) => nodeId("contact", id),
  company: (id: string) => nodeId("company", id),
  deal: (id: string) => nodeId("deal", id),
  event: (id: string) => nodeId("event", id),
  product: (name: string) => nodeId("product", slug(name)),
  location: (name: string) => nodeId("location", slug(name)),
  industry: (name: string) => nodeId("industry", slug(name)),
  segment: (name: string) => nodeId("segment", slug(name))
}

const edge = (src: string, type: RelationType, dst: string, weight: number): GraphEdge => ({ src, type, dst, weight, props: {} })
const node = (id: string, kind: NodeKind, name: string, props: GraphNode["props"] = {}): GraphNode => ({ id, kind, name, props })

/** Weights of the edges interactions imply. */
export const weights = { interestedIn: 0.6, dealInterest: 0.7, attended: 0.8, metAt: 0.5, worksAt: 1, reportsTo: 0.8, referredBy: 0.7 }

/** The graph writes of ingestion over a graph adapter. */
export const make = (graph: KnowledgeGraphShape) => {
  // Creates the nodes that do not exist; leaves existing ones as they are.
  const ensure = (tenant: TenantId, nodes: ReadonlyArray<GraphNode>) =>
    Effect.gen(function* () {
      const missing: Array<GraphNode> = []
      for (const n of nodes) if (Option.isNone(yield* graph.getNode(tenant, n.id))) missing.push(n)
      if (missing.length > 0) yield* graph.upsertNodes(tenant, missing)
    })

  // Makes `src`'s outgoing edges of `types` exactly `desired` (atomically: concurrent record
  // changes of one node apply one after the other).
  const replace = (tenant: TenantId, src: string, types: ReadonlyArray<RelationType>, desired: ReadonlyArray<GraphEdge>) =>
    graph.replaceEdges(tenant, src, types, desired)

  // Adds edges, or raises their weight; never lowers one. One atomic write per edge (the
  // adapter compares with the stored weight), so concurrent events for a contact all count.
  const strengthen = (tenant: TenantId, wanted: ReadonlyArray<GraphEdge>) =>
    wanted.length === 0 ? Effect.void : graph.strengthenEdges(tenant, wanted, { combine: "max" })

  return {
    /** The contact's node, created if missing. */
    contact: (tenant: TenantId, id: string, name: string): Effect.Effect<void, StorageError> =>
      ensure(tenant, [node(ids.contact(id), "contact", name)]),

    /** The contact is interested in each product named. */
    interestedIn: (tenant: TenantId, contactId: string, products: ReadonlyArray<string>): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        yield* ensure(tenant, products.map((p) => node(ids.product(p), "product", p)))
        yield* strengthen(tenant, products.map((p) => edge(ids.contact(contactId), "INTERESTED_IN", ids.product(p), weights.interestedIn)))
      }),

    /** A meeting: its event node, who attended, and that attendees now know each other. */
    meeting: (tenant: TenantId, meetingId: string, title: string, contactIds: ReadonlyArray<string>): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        yield* ensure(tenant, [node(ids.event(meetingId), "event", title)])
        for (const c of contactIds) {
          const others = contactIds.filter((o) => o !== c)
          yield* strengthen(tenant, [
            edge(ids.contact(c), "ATTENDED", ids.event(meetingId), weights.attended),
            ...others.filter((o) => o > c).map((o) => edge(ids.contact(c), "KNOWS", ids.contact(o), weights.metAt))
          ])
        }
      }),

    /** A contact record: its node and the edges the record defines. */
    contactRecord: (tenant: TenantId, c: ContactRecord, company: Option.Option<Company>): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        const me = ids.contact(c.id)
        yield* graph.upsertNodes(tenant, [node(me, "contact", c.name, { title: c.title, industry: c.industry, segment: c.segment, region: c.region })])
        const refs: Array<GraphNode> = [node(ids.segment(c.segment), "segment", c.segment)]
        const desired: Array<GraphEdge> = [edge(me, "BELONGS_TO", ids.segment(c.segment), 1)]
        if (c.companyId !== null) {
          refs.push(node(ids.company(c.companyId), "company", Option.match(company, { onNone: () => c.company, onSome: (x) => x.name })))
          desired.push(edge(me, "WORKS_AT", ids.company(c.companyId), weights.worksAt))
        }
        if (c.reportsTo !== null && c.reportsTo !== c.id) {
          refs.push(node(ids.contact(c.reportsTo), "contact", c.reportsTo))
          desired.push(edge(me, "REPORTS_TO", ids.contact(c.reportsTo), weights.reportsTo))
        }
        if (c.referredBy !== null && c.referredBy !== c.id) {
          refs.push(node(ids.contact(c.referredBy), "contact", c.referredBy))
          desired.push(edge(me, "REFERRED_BY", ids.contact(c.referredBy), weights.referredBy))
        }
        yield* ensure(tenant, refs)
        yield* replace(tenant, me, ["WORKS_AT", "REPORTS_TO", "REFERRED_BY", "BELONGS_TO"], desired)
      }),

    /** A company record: its node, where it is, its industry, competitors and partners. */
    companyRecord: (tenant: TenantId, c: CompanyRecord): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        const me = ids.company(c.id)
        yield* graph.upsertNodes(tenant, [node(me, "company", c.name, { domain: c.domain, industry: c.industry, segment: c.segment })])
        const refs: Array<GraphNode> = []
        const desired: Array<GraphEdge> = []
        if (c.region !== null) {
          refs.push(node(ids.location(c.region), "location", c.region))
          desired.push(edge(me, "LOCATED_IN", ids.location(c.region), 1))
        }
        if (c.industry !== null) {
          refs.push(node(ids.industry(c.industry), "industry", c.industry))
          desired.push(edge(me, "BELONGS_TO", ids.industry(c.industry), 1))
        }
        for (const other of c.competitors.filter((o) => o !== c.id)) {
          refs.push(node(ids.company(other), "company", other))
          desired.push(edge(me, "COMPETES_WITH", ids.company(other), 1))
        }
        for (const other of c.partners.filter((o) => o !== c.id)) {
          refs.push(node(ids.company(other), "company", other))
          desired.push(edge(me, "PARTNERS_WITH", ids.company(other), 1))
        }
        yield* ensure(tenant, refs)
        yield* replace(tenant, me, ["LOCATED_IN", "BELONGS_TO", "COMPETES_WITH", "PARTNERS_WITH"], desired)
      }),

    /** A deal: its node, its company, the products its contact wants, and purchases once won. */
    dealRecord: (tenant: TenantId, d: Deal): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        const me = ids.deal(d.id)
        yield* graph.upsertNodes(tenant, [node(me, "deal", d.name, { stage: d.stage, amount: d.amount, currency: d.currency })])
        const refs: Array<GraphNode> = d.products.map((p) => node(ids.product(p), "product", p))
        if (d.companyId !== null) refs.push(node(ids.company(d.companyId), "company", d.companyId))
        if (d.contactId !== null) refs.push(node(ids.contact(d.contactId), "contact", d.contactId))
        yield* ensure(tenant, refs)
        yield* replace(tenant, me, ["BELONGS_TO"], d.companyId === null ? [] : [edge(me, "BELONGS_TO", ids.company(d.companyId), 1)])
        if (d.contactId !== null) {
          const c = ids.contact(d.contactId)
          yield* strengthen(tenant, d.products.map((p) => edge(c, "INTERESTED_IN", ids.product(p), weights.dealInterest)))
        }
        const buyer = d.companyId !== null ? ids.company(d.companyId) : d.contactId !== null ? ids.contact(d.contactId) : null
        if (d.stage === "won" && buyer !== null) {
          yield* strengthen(tenant, d.products.map((p) => edge(buyer, "PURCHASED", ids.product(p), 1)))
        }
      }),

    /** Near-duplicate contacts: `SIMILAR_TO` edges weighted by similarity. */
    similar: (tenant: TenantId, contactId: string, matches: ReadonlyArray<Match>): Effect.Effect<void, StorageError> =>
      Effect.gen(function* () {
        if (matches.length === 0) return
        yield* ensure(tenant, matches.map((m) => node(ids.contact(m.id), "contact", String(m.payload.name ?? m.id))))
        yield* graph.upsertEdges(tenant, matches.map((m) => edge(ids.contact(contactId), "SIMILAR_TO", ids.contact(m.id), Math.min(1, Math.max(1e-6, m.score)))))
      })
  }
}
