/**
 * The knowledge graph port: who works where, who knows and reports to whom, who is
 * interested in or bought what, which companies compete or partner, as typed, weighted
 * edges between tenant-scoped nodes. Two adapters behave the same (one contract suite runs
 * against both): `PgGraph` (embedded, recursive SQL over Postgres tables) and `Neo4jGraph`.
 *
 * Rules both follow:
 * - An edge weight is in (0, 1]: how warm or strong the relationship is.
 * - Traversals ignore direction; results report each edge as stored.
 * - The warmest introduction path is the simple path (no node twice) of at most `maxHops`
 *   edges whose product of weights is highest; ties go to fewer hops, then to the
 *   lexicographically smallest sequence of node ids.
 * - Influence is the weighted degree: the sum over a node's edges of
 *   `influenceWeights[type][direction] * weight` (managing people, referring people and
 *   knowing people count; working somewhere does not).
 * - Writes are atomic per edge: a new weight is combined with the stored one inside the
 *   write itself (never read first, then written), so concurrent updates of one edge all
 *   count and concurrent creations of one edge make one edge.
 */
import { Context, type Effect, type Option, Schema } from "effect"
import type { TenantId } from "../protocols/Ids.js"
import type { StorageError } from "./Errors.js"

/** The relationship types of the design. */
export const RelationType = Schema.Literal(
  "WORKS_AT", "REPORTS_TO", "KNOWS", "INTERESTED_IN", "PURCHASED", "ATTENDED",
  "SIMILAR_TO", "REFERRED_BY", "COMPETES_WITH", "PARTNERS_WITH", "LOCATED_IN", "BELONGS_TO"
)
export type RelationType = typeof RelationType.Type

/** Every relationship type. */
export const relationTypes: ReadonlyArray<RelationType> = RelationType.literals

/** Kinds of node. */
export const NodeKind = Schema.Literal("contact", "company", "deal", "product", "event", "location", "segment", "industry", "campaign")
export type NodeKind = typeof NodeKind.Type

/** A scalar property. */
export type PropValue = string | number | boolean | null

/** A node. Ids are unique per tenant; `nodeId(kind, id)` builds the usual `<kind>:<id>`. */
export interface GraphNode {
  readonly id: string
  readonly kind: NodeKind
  readonly name: string
  readonly props: Readonly<Record<string, PropValue>>
}

/** A directed, typed, weighted edge; one per (src, type, dst). */
export interface GraphEdge {
  readonly src: string
  readonly type: RelationType
  readonly dst: string
  /** In (0, 1]. */
  readonly weight: number
  readonly props: Readonly<Record<string, PropValue>>
}

/** A path between two nodes. */
export interface Path {
  /** From the start to the end, in order. */
  readonly nodes: ReadonlyArray<GraphNode>
  /** `edges[i]` joins `nodes[i]` and `nodes[i + 1]` (in either direction). */
  readonly edges: ReadonlyArray<GraphEdge>
  /** Product of the edge weights. */
  readonly warmth: number
}

/** What lies around a node. */
export interface Neighbourhood {
  readonly center: GraphNode
  /** Nearest first, then by id. */
  readonly nodes: ReadonlyArray<{ readonly node: GraphNode; readonly distance: number }>
  /** Edges among the center and those nodes, by (src, type, dst). */
  readonly edges: ReadonlyArray<GraphEdge>
}

/** A node and its influence score. */
export interface Influence {
  readonly node: GraphNode
  readonly score: number
}

/** Types an introduction can travel along by default: relationships between people and their workplaces. */
export const introductionTypes: ReadonlyArray<RelationType> = ["KNOWS", "REPORTS_TO", "REFERRED_BY", "WORKS_AT"]

/** Weight of each edge type in the influence score, by direction seen from the node. */
export const influenceWeights: Readonly<Record<RelationType, { readonly out: number; readonly in: number }>> = {
  REPORTS_TO: { out: 0.5, in: 3 },
  KNOWS: { out: 1, in: 1 },
  REFERRED_BY: { out: 0.5, in: 2 },
  WORKS_AT: { out: 0, in: 0 },
  INTERESTED_IN: { out: 0.25, in: 1 },
  PURCHASED: { out: 0.5, in: 1 },
  ATTENDED: { out: 0.5, in: 1 },
  SIMILAR_TO: { out: 0, in: 0 },
  COMPETES_WITH: { out: 0.5, in: 0.5 },
  PARTNERS_WITH: { out: 1, in: 1 },
  LOCATED_IN: { out: 0, in: 0.25 },
  BELONGS_TO: { out: 0, in: 0.5 }
}

/** Longest introduction path searched. */
export const MAX_PATH_HOPS = 6
/** Widest neighbourhood returned. */
export const MAX_NEIGHBOURHOOD_HOPS = 3

/** The usual node id of a record: `<kind>:<id>`. */
export const nodeId = (kind: NodeKind, id: string): string => `${kind}:${id}`

/** Options of `neighbourhood`. */
export interface NeighbourhoodOptions {
  /** Hops out from the center (1..3). Default 1. */
  readonly hops?: number
  /** Edge types followed. Default all. */
  readonly types?: ReadonlyArray<RelationType>
  /** Most nodes returned. Default 50. */
  readonly limit?: number
}

/** Options of `introductionPath`. */
export interface PathOptions {
  /** Longest path (1..6 edges). Default 4. */
  readonly maxHops?: number
  /** Edge types the path may use. Default `introductionTypes`. */
  readonly via?: ReadonlyArray<RelationType>
}

/**
 * How `strengthenEdges` combines a new weight `w` with the stored weight `s` of an edge:
 * `max` keeps the larger (an update repeated changes nothing, so a redelivered event is
 * harmless); `accumulate` treats each update as independent evidence, `1 − (1 − s)(1 − w)`
 * (every update counts, in any order, and the weight stays in (0, 1]).
 */
export type Combine = "max" | "accumulate"

/** Options of `strengthenEdges`. */
export interface StrengthenOptions {
  /** How weights combine. Default `max`. */
  readonly combine?: Combine
}

/** Combines stored weight `s` with new weight `w` (what the adapters compute in their write). */
export const combineWeights = (combine: Combine, s: number, w: number): number =>
  combine === "max" ? Math.max(s, w) : Math.max(s, w, 1 - (1 - s) * (1 - w))

/** Options of `influence`. */
export interface InfluenceOptions {
  /** Kind of node ranked. Default `contact`. */
  readonly kind?: NodeKind
  /** Only nodes that work at or belong to this node (a company id). */
  readonly within?: string
  /** Most nodes returned. Default 10. */
  readonly limit?: number
}

/** The knowledge graph. */
export interface KnowledgeGraphShape {
  /** Which adapter this is. */
  readonly backend: "postgres" | "neo4j"
  /** Creates or replaces nodes (kind, name, props). */
  readonly upsertNodes: (tenant: TenantId, nodes: ReadonlyArray<GraphNode>) => Effect.Effect<void, StorageError>
  /** Creates or replaces edges; fails with `Invalid` if an endpoint is missing or a weight is not in (0, 1]. */
  readonly upsertEdges: (tenant: TenantId, edges: ReadonlyArray<GraphEdge>) => Effect.Effect<void, StorageError>
  /**
   * Creates edges, or strengthens existing ones by combining weights (`options.combine`) in
   * one atomic write per edge; an existing edge keeps its props. Fails like `upsertEdges`.
   */
  readonly strengthenEdges: (
    tenant: TenantId,
    edges: ReadonlyArray<GraphEdge>,
    options?: StrengthenOptions
  ) => Effect.Effect<void, StorageError>
  /**
   * Makes the outgoing edges of `src` of `types` exactly `edges` (each from `src`, of one of
   * `types`): the others removed, these upserted, atomically and one replacement of a node
   * at a time, so concurrent replacements never leave a mix of both. Fails with `Invalid` if
   * an edge does not fit or a node is missing.
   */
  readonly replaceEdges: (
    tenant: TenantId,
    src: string,
    types: ReadonlyArray<RelationType>,
    edges: ReadonlyArray<GraphEdge>
  ) => Effect.Effect<void, StorageError>
  /** Removes a node and its edges (nothing if absent). */
  readonly removeNode: (tenant: TenantId, id: string) => Effect.Effect<void, StorageError>
  /** Removes one edge (nothing if absent). */
  readonly removeEdge: (tenant: TenantId, src: string, type: RelationType, dst: string) => Effect.Effect<void, StorageError>
  readonly getNode: (tenant: TenantId, id: string) => Effect.Effect<Option.Option<GraphNode>, StorageError>
  /** Every edge touching a node, by (src, type, dst). */
  readonly edgesOf: (tenant: TenantId, id: string) => Effect.Effect<ReadonlyArray<GraphEdge>, StorageError>
  /** Nodes within `hops` of a node, and the edges among them; none if the node is absent. */
  readonly neighbourhood: (
    tenant: TenantId,
    id: string,
    options?: NeighbourhoodOptions
  ) => Effect.Effect<Option.Option<Neighbourhood>, StorageError>
  /** The warmest introduction path from one node to another; none if there is none within `maxHops`. */
  readonly introductionPath: (
    tenant: TenantId,
    from: string,
    to: string,
    options?: PathOptions
  ) => Effect.Effect<Option.Option<Path>, StorageError>
  /** The most influential nodes, highest score first, ties by id. */
  readonly influence: (tenant: TenantId, options?: InfluenceOptions) => Effect.Effect<ReadonlyArray<Influence>, StorageError>
}

/** The knowledge graph service (the abstract port). */
export class KnowledgeGraph extends Context.Tag("nexus/storage/KnowledgeGraph")<KnowledgeGraph, KnowledgeGraphShape>() {}

/** Clamps an option to an integer range. */
export const clampInt = (value: number | undefined, fallback: number, min: number, max: number): number =>
  Math.min(max, Math.max(min, Math.floor(value ?? fallback)))

/** Why an edge cannot be stored, if it cannot. */
export const edgeProblem = (e: GraphEdge): string | undefined => {
  if (!relationTypes.includes(e.type)) return `unknown relationship type '${e.type}'`
  if (!(e.weight > 0 && e.weight <= 1)) return `weight ${e.weight} of ${e.src} -${e.type}-> ${e.dst} is not in (0, 1]`
  if (e.src === e.dst) return `edge ${e.src} -${e.type}-> itself`
  return undefined
}

/** Why `edges` cannot replace the `types` edges of `src`, if they cannot. */
export const replacementProblem = (src: string, types: ReadonlyArray<RelationType>, edges: ReadonlyArray<GraphEdge>): string | undefined => {
  for (const t of types) if (!relationTypes.includes(t)) return `unknown relationship type '${t}'`
  for (const e of edges) {
    if (e.src !== src || !types.includes(e.type)) return `edge ${e.src} -${e.type}-> ${e.dst} is not one of the ${types.join("/")} edges of ${src}`
    const problem = edgeProblem(e)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** Merges edges of one batch that share (src, type, dst): combined weights, the first one's props. */
export const mergeBatch = (edges: ReadonlyArray<GraphEdge>, combine: Combine): Array<GraphEdge> => {
  const byKey = new Map<string, GraphEdge>()
  for (const e of edges) {
    const key = `${e.src}\u0000${e.type}\u0000${e.dst}`
    const seen = byKey.get(key)
    byKey.set(key, seen === undefined ? e : { ...seen, weight: combineWeights(combine, seen.weight, e.weight) })
  }
  return [...byKey.values()]
}

/** Rounds a score for ordering, so that products taken in another order compare equal. */
export const rank = (score: number): number => Math.round(score * 1e9)
