/**
 * The embedded knowledge graph: nodes and edges in Postgres tables (row-level security per
 * tenant like every tenant table), traversed with recursive queries. The introduction path
 * is searched from both ends at once (half the hops each, joined on the meeting node), which
 * keeps the number of partial paths to the square root of a one-sided search. A
 * neighbourhood is one statement, whose JSON value can also travel inside a bigger one
 * (`reads.neighbourhood`).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import * as Decoder from "../protocols/Decoder.js"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import type { Arg, JsonRead } from "./internal/JsonRows.js"
import {
  clampInt,
  edgeProblem,
  type GraphEdge,
  type GraphNode,
  influenceWeights,
  introductionTypes,
  KnowledgeGraph,
  type KnowledgeGraphShape,
  MAX_NEIGHBOURHOOD_HOPS,
  MAX_PATH_HOPS,
  mergeBatch,
  type Neighbourhood,
  type NeighbourhoodOptions,
  NodeKind,
  RelationType,
  replacementProblem,
  type StrengthenOptions
} from "./KnowledgeGraph.js"
import * as Tenancy from "./Tenancy.js"

/** The embedded graph: the port, and its reads for callers that combine them into one statement. */
export interface PgGraphShape extends KnowledgeGraphShape {
  /** Reads to be sent inside another statement, in a tenant scope the caller opens (see `internal/JsonRows`). */
  readonly reads: {
    /** What `neighbourhood` reads. */
    readonly neighbourhood: (
      tenant: TenantId,
      id: Arg<string>,
      options?: NeighbourhoodOptions
    ) => JsonRead<Option.Option<Neighbourhood>, ParseResult.ParseError>
  }
}

/** The embedded graph's own tag (the layer also provides `KnowledgeGraph`). */
export class PgGraph extends Context.Tag("nexus/storage/PgGraph")<PgGraph, PgGraphShape>() {}

const Props = Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null) })
const NodeRow = Schema.Struct({ id: Schema.String, kind: NodeKind, name: Schema.String, props: Props })
const EdgeRow = Schema.Struct({ src: Schema.String, type: RelationType, dst: Schema.String, weight: Schema.Number, props: Props })
const decodeNodes = Decoder.effect(Schema.Array(NodeRow))
const decodeEdges = Decoder.effect(Schema.Array(EdgeRow))

/** Builds the embedded graph over a SQL client. */
export const make: Effect.Effect<PgGraphShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const scoped =
    (operation: string) =>
    <A, E>(effect: Effect.Effect<A, E>, tenant: TenantId): Effect.Effect<A, StorageError> =>
      Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine(`PgGraph.${operation}`)))
  const nodeColumns = sql.literal("id, kind, name, props")
  const edgeColumns = sql.literal("src, type, dst, weight, props")

  const nodesById = (tenant: TenantId, ids: ReadonlyArray<string>) =>
    Effect.map(
      Effect.flatMap(sql`SELECT ${nodeColumns} FROM graph_nodes WHERE tenant_id = ${tenant} AND id = ANY(${[...ids]}::text[])`, decodeNodes),
      (rows) => new Map(rows.map((n) => [n.id, n as GraphNode]))
    )

  // Edges of `types`; every type when none are given (a CHECK of the table keeps every stored
  // type among `relationTypes`, so there is nothing to filter).
  const ofTypes = (column: ReturnType<typeof sql.literal>, types: ReadonlyArray<string> | undefined) =>
    types === undefined ? sql`TRUE` : sql`${column} = ANY(${[...types]}::text[])`

  // Neighbours of `node` along `types`, either direction: a LATERAL source for recursive terms.
  const neighbours = (tenant: TenantId, node: ReturnType<typeof sql.literal>, types: ReadonlyArray<string> | undefined) => sql`
    SELECT e.dst AS node, e.weight, e.src || ' ' || e.type || ' ' || e.dst AS edge FROM graph_edges e
      WHERE e.tenant_id = ${tenant} AND e.src = ${node} AND ${ofTypes(sql.literal("e.type"), types)}
    UNION ALL
    SELECT e.src AS node, e.weight, e.src || ' ' || e.type || ' ' || e.dst AS edge FROM graph_edges e
      WHERE e.tenant_id = ${tenant} AND e.dst = ${node} AND ${ofTypes(sql.literal("e.type"), types)}`

  const upsertNodes = Effect.fn("PgGraph.upsertNodes")(function* (tenant: TenantId, nodes: ReadonlyArray<GraphNode>) {
    const latest = [...new Map(nodes.map((n) => [n.id, n])).values()]
    for (let i = 0; i < latest.length; i += 500) {
      const batch = latest.slice(i, i + 500).map((n) => ({
        tenant_id: tenant, id: n.id, kind: n.kind, name: n.name, props: JSON.stringify(n.props)
      }))
      yield* sql`
        INSERT INTO graph_nodes ${sql.insert(batch)}
        ON CONFLICT (tenant_id, id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, props = EXCLUDED.props, updated_at = now()
        WHERE (graph_nodes.kind, graph_nodes.name, graph_nodes.props) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.props)`
    }
  }, scoped("upsertNodes"))

  // Fails with `Invalid` for a bad edge or a missing endpoint (checked in the caller's transaction).
  const validate = (operation: string, tenant: TenantId, edges: ReadonlyArray<GraphEdge>) =>
    Effect.gen(function* () {
      for (const e of edges) {
        const problem = edgeProblem(e)
        if (problem !== undefined) return yield* Effect.fail(Errors.invalid(operation, problem))
      }
      const ends = [...new Set(edges.flatMap((e) => [e.src, e.dst]))]
      const missing = yield* sql<{ id: string }>`
        SELECT x.id FROM unnest(${ends}::text[]) AS x(id)
        WHERE NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.tenant_id = ${tenant} AND n.id = x.id)`
      if (missing.length > 0) return yield* Effect.fail(Errors.invalid(operation, `no node ${missing.map((m) => m.id).join(", ")}`))
    })

  const rowsOf = (tenant: TenantId, edges: ReadonlyArray<GraphEdge>) =>
    edges.map((e) => ({ tenant_id: tenant, src: e.src, type: e.type, dst: e.dst, weight: e.weight, props: JSON.stringify(e.props) }))

  const upsertEdges = Effect.fn("PgGraph.upsertEdges")(function* (tenant: TenantId, edges: ReadonlyArray<GraphEdge>) {
    const latest = [...new Map(edges.map((e) => [`${e.src} ${e.type} ${e.dst}`, e])).values()]
    if (latest.length === 0) return
    yield* validate("PgGraph.upsertEdges", tenant, edges)
    for (let i = 0; i < latest.length; i += 500) {
      yield* sql`
        INSERT INTO graph_edges ${sql.insert(rowsOf(tenant, latest.slice(i, i + 500)))}
        ON CONFLICT (tenant_id, src, type, dst) DO UPDATE SET weight = EXCLUDED.weight, props = EXCLUDED.props, updated_at = now()
        WHERE (graph_edges.weight, graph_edges.props) IS DISTINCT FROM (EXCLUDED.weight, EXCLUDED.props)`
    }
  }, scoped("upsertEdges"))

  // The new weight is computed from the row as it is when the conflicting insert locks it,
  // so concurrent strengthenings of one edge queue on that row lock and none is lost.
  const strengthenEdges = Effect.fn("PgGraph.strengthenEdges")(function* (
    tenant: TenantId,
    edges: ReadonlyArray<GraphEdge>,
    options: StrengthenOptions = {}
  ) {
    const combine = options.combine ?? "max"
    const merged = mergeBatch(edges, combine)
    if (merged.length === 0) return
    yield* validate("PgGraph.strengthenEdges", tenant, edges)
    const update = combine === "max"
      ? sql`weight = EXCLUDED.weight, updated_at = now() WHERE EXCLUDED.weight > graph_edges.weight`
      : sql`weight = greatest(graph_edges.weight, EXCLUDED.weight, 1 - (1 - graph_edges.weight) * (1 - EXCLUDED.weight)), updated_at = now()
             WHERE graph_edges.weight < 1`
    for (let i = 0; i < merged.length; i += 500) {
      yield* sql`
        INSERT INTO graph_edges ${sql.insert(rowsOf(tenant, merged.slice(i, i + 500)))}
        ON CONFLICT (tenant_id, src, type, dst) DO UPDATE SET ${update}`
    }
  }, scoped("strengthenEdges"))

  // The source node's row is held (FOR NO KEY UPDATE: edges that merely point at it are not
  // blocked) until the transaction ends, so a concurrent replacement waits, then deletes with
  // a fresh snapshot that sees what this one wrote.
  const replaceEdges = Effect.fn("PgGraph.replaceEdges")(function* (
    tenant: TenantId,
    src: string,
    types: ReadonlyArray<RelationType>,
    edges: ReadonlyArray<GraphEdge>
  ) {
    const problem = replacementProblem(src, types, edges)
    if (problem !== undefined) return yield* Effect.fail(Errors.invalid("PgGraph.replaceEdges", problem))
    const held = yield* sql`SELECT id FROM graph_nodes WHERE tenant_id = ${tenant} AND id = ${src} FOR NO KEY UPDATE`
    if (held.length === 0) return yield* Effect.fail(Errors.invalid("PgGraph.replaceEdges", `no node ${src}`))
    const keep = edges.map((e) => `${e.type} ${e.dst}`)
    yield* sql`
      DELETE FROM graph_edges
      WHERE tenant_id = ${tenant} AND src = ${src} AND type = ANY(${[...types]}::text[]) AND NOT ((type || ' ' || dst) = ANY(${keep}::text[]))`
    yield* upsertEdges(tenant, edges)
  }, scoped("replaceEdges"))

  const removeNode = Effect.fn("PgGraph.removeNode")(function* (tenant: TenantId, id: string) {
    yield* sql`DELETE FROM graph_nodes WHERE tenant_id = ${tenant} AND id = ${id}`
  }, scoped("removeNode"))

  const removeEdge = Effect.fn("PgGraph.removeEdge")(function* (tenant: TenantId, src: string, type: RelationType, dst: string) {
    yield* sql`DELETE FROM graph_edges WHERE tenant_id = ${tenant} AND src = ${src} AND type = ${type} AND dst = ${dst}`
  }, scoped("removeEdge"))

  const getNode = Effect.fn("PgGraph.getNode")(function* (tenant: TenantId, id: string) {
    return Option.fromNullable((yield* nodesById(tenant, [id])).get(id))
  }, scoped("getNode"))

  const edgesOf = Effect.fn("PgGraph.edgesOf")(function* (tenant: TenantId, id: string) {
    return yield* decodeEdges(yield* sql`
      SELECT ${edgeColumns} FROM graph_edges WHERE tenant_id = ${tenant} AND (src = ${id} OR dst = ${id})
      ORDER BY src, type, dst`)
  }, scoped("edgesOf"))

  // The whole neighbourhood as one JSON value: `{ center, nodes, edges }` (center null when the
  // node is absent), so that it costs one statement alone and nothing more inside another.
  const neighbourhoodRead = (tenant: TenantId, id: Arg<string>, options: NeighbourhoodOptions = {}): JsonRead<Option.Option<Neighbourhood>, ParseResult.ParseError> => {
    const hops = clampInt(options.hops, 1, 1, MAX_NEIGHBOURHOOD_HOPS)
    const limit = clampInt(options.limit, 50, 0, 10_000)
    const types = options.types
    return {
      json: sql`(
        WITH RECURSIVE reach(node, depth) AS (
          SELECT ${id}::text COLLATE "C", 0
          UNION
          SELECT nb.node, r.depth + 1 FROM reach r
          CROSS JOIN LATERAL (${neighbours(tenant, sql.literal("r.node"), types)}) nb
          WHERE r.depth < ${hops}
        ),
        found AS (
          SELECT n.id, n.kind, n.name, n.props, min(r.depth)::int AS distance
          FROM reach r JOIN graph_nodes n ON n.tenant_id = ${tenant} AND n.id = r.node
          WHERE r.node <> ${id}
          GROUP BY n.id, n.kind, n.name, n.props
          ORDER BY distance, n.id LIMIT ${limit}
        ),
        ids AS (SELECT ${id}::text COLLATE "C" AS id UNION ALL SELECT f.id FROM found f)
        SELECT json_build_object(
          'center', (SELECT to_json(c) FROM (SELECT ${nodeColumns} FROM graph_nodes WHERE tenant_id = ${tenant} AND id = ${id}) c),
          'nodes', (SELECT coalesce(json_agg(f ORDER BY f.distance, f.id), '[]') FROM found f),
          'edges', (SELECT coalesce(json_agg(e ORDER BY e.src, e.type, e.dst), '[]') FROM (
            SELECT e.src, e.type, e.dst, e.weight, e.props FROM ids JOIN graph_edges e ON e.tenant_id = ${tenant} AND e.src = ids.id
            WHERE e.dst IN (SELECT id FROM ids) AND ${ofTypes(sql.literal("e.type"), types)}
          ) e)
        ))`,
      decode: (json) =>
        Effect.gen(function* () {
          const hood = json as { center: unknown; nodes: ReadonlyArray<{ distance: number }>; edges: unknown }
          if (hood.center === null) return Option.none()
          const [center] = yield* decodeNodes([hood.center])
          const nodes = yield* decodeNodes(hood.nodes)
          const edges = yield* decodeEdges(hood.edges)
          return Option.some({ center: center!, nodes: nodes.map((node, i) => ({ node, distance: hood.nodes[i]!.distance })), edges })
        })
    }
  }

  const neighbourhood = Effect.fn("PgGraph.neighbourhood")(function* (tenant: TenantId, id: string, options: NeighbourhoodOptions = {}) {
    const read = neighbourhoodRead(tenant, id, options)
    const rows = yield* sql<{ hood: unknown }>`SELECT ${read.json} AS hood`
    return yield* read.decode(rows[0]!.hood)
  }, scoped("neighbourhood"))

  const introductionPath = Effect.fn("PgGraph.introductionPath")(function* (
    tenant: TenantId,
    from: string,
    to: string,
    options: { readonly maxHops?: number; readonly via?: ReadonlyArray<RelationType> } = {}
  ) {
    const ends = yield* nodesById(tenant, [from, to])
    if (!ends.has(from) || !ends.has(to)) return Option.none()
    if (from === to) return Option.some({ nodes: [ends.get(from)!], edges: [], warmth: 1 })
    const maxHops = clampInt(options.maxHops, 4, 1, MAX_PATH_HOPS)
    const via = options.via ?? introductionTypes
    // columns of the recursive terms come from "C"-collated columns: the seed rows say so too
    const half = (start: string) => sql`
      SELECT ${start}::text COLLATE "C" AS node, ARRAY[${start}::text COLLATE "C"] AS path,
             ARRAY[]::text[] COLLATE "C" AS edges, 1::float8 AS warmth, 0 AS hops`
    const step = (name: string, depth: number) => sql`
      SELECT nb.node, s.path || nb.node, s.edges || nb.edge, s.warmth * nb.weight, s.hops + 1
      FROM ${sql(name)} s CROSS JOIN LATERAL (${neighbours(tenant, sql.literal("s.node"), via)}) nb
      WHERE s.hops < ${depth} AND NOT nb.node = ANY(s.path)`
    const rows = yield* sql<{ path: Array<string>; edges: Array<string>; warmth: number }>`
      WITH RECURSIVE
        fwd(node, path, edges, warmth, hops) AS (${half(from)} UNION ALL ${step("fwd", Math.ceil(maxHops / 2))}),
        bwd(node, path, edges, warmth, hops) AS (${half(to)} UNION ALL ${step("bwd", Math.floor(maxHops / 2))}),
        joined AS (
          SELECT f.path || ARRAY(SELECT b.path[i] FROM generate_series(b.hops, 1, -1) AS i) AS path,
                 f.edges || ARRAY(SELECT b.edges[i] FROM generate_series(b.hops, 1, -1) AS i) AS edges,
                 f.warmth * b.warmth AS warmth, f.hops + b.hops AS hops
          FROM fwd f JOIN bwd b ON b.node = f.node
          WHERE f.hops + b.hops >= 1 AND NOT (f.path[1:f.hops] && b.path)
        )
      SELECT path, edges, warmth FROM joined
      ORDER BY round((warmth * 1e9)::numeric) DESC, hops, path LIMIT 1`
    const best = rows[0]
    if (best === undefined) return Option.none()
    const keys = best.edges.map((k) => k.split(" ") as [string, string, string])
    const stored = yield* decodeEdges(yield* sql`
      SELECT ${edgeColumns} FROM graph_edges
      WHERE tenant_id = ${tenant} AND (src || ' ' || type || ' ' || dst) = ANY(${best.edges}::text[])`)
    const byKey = new Map(stored.map((e) => [`${e.src} ${e.type} ${e.dst}`, e as GraphEdge]))
    const nodes = yield* nodesById(tenant, best.path)
    return Option.some({
      nodes: best.path.map((n) => nodes.get(n)!),
      edges: keys.map((k) => byKey.get(k.join(" "))!),
      warmth: best.warmth
    })
  }, scoped("introductionPath"))

  const weights = Object.entries(influenceWeights).flatMap(([type, w]) => [
    { type, dir: "out", w: w.out },
    { type, dir: "in", w: w.in }
  ])

  const influence = Effect.fn("PgGraph.influence")(function* (
    tenant: TenantId,
    options: { readonly kind?: NodeKind; readonly within?: string; readonly limit?: number } = {}
  ) {
    const within = options.within === undefined
      ? sql`TRUE`
      : sql`EXISTS (SELECT 1 FROM graph_edges x WHERE x.tenant_id = ${tenant} AND x.src = n.id
                    AND x.type IN ('WORKS_AT', 'BELONGS_TO') AND x.dst = ${options.within})`
    const rows = yield* sql<{ id: string; kind: string; name: string; props: unknown; score: number }>`
      WITH w(type, dir, w) AS (
        SELECT * FROM unnest(${weights.map((x) => x.type)}::text[], ${weights.map((x) => x.dir)}::text[], ${weights.map((x) => x.w)}::float8[])
      )
      SELECT n.id, n.kind, n.name, n.props, coalesce(sum(w.w * e.weight), 0)::float8 AS score
      FROM graph_nodes n
      LEFT JOIN LATERAL (
        SELECT e.type, e.weight, 'out' AS dir FROM graph_edges e WHERE e.tenant_id = ${tenant} AND e.src = n.id
        UNION ALL
        SELECT e.type, e.weight, 'in' AS dir FROM graph_edges e WHERE e.tenant_id = ${tenant} AND e.dst = n.id
      ) e ON TRUE
      LEFT JOIN w ON w.type = e.type AND w.dir = e.dir
      WHERE n.tenant_id = ${tenant} AND n.kind = ${options.kind ?? "contact"} AND ${within}
      GROUP BY n.id, n.kind, n.name, n.props
      ORDER BY round((coalesce(sum(w.w * e.weight), 0) * 1e9)::numeric) DESC, n.id
      LIMIT ${clampInt(options.limit, 10, 0, 10_000)}`
    const nodes = yield* decodeNodes(rows)
    return nodes.map((node, i) => ({ node, score: rows[i]!.score }))
  }, scoped("influence"))

  return {
    backend: "postgres", upsertNodes, upsertEdges, strengthenEdges, replaceEdges, removeNode, removeEdge, getNode, edgesOf, neighbourhood,
    introductionPath, influence, reads: { neighbourhood: neighbourhoodRead }
  } satisfies PgGraphShape
})

/** The embedded graph over the `SqlClient` of a `Database` layer; provides `PgGraph` and `KnowledgeGraph`. */
export const layer: Layer.Layer<PgGraph | KnowledgeGraph, never, SqlClient.SqlClient> = Layer.effectContext(
  Effect.map(make, (graph) => Context.make(PgGraph, graph).pipe(Context.add(KnowledgeGraph, graph)))
)
