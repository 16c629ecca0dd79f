/**
 * The Neo4j adapter of the knowledge graph port (`neo4j-driver`, Cypher). Every node is an
 * `:Entity` with `tenant`, `id`, `kind`, `name` and `props` (JSON text: Neo4j properties
 * cannot nest); relationships carry their design type (`:KNOWS`, `:WORKS_AT`…) and
 * `tenant`, `weight`, `props`. Every query matches on `tenant`, so one tenant never reaches
 * another's nodes; a uniqueness constraint on (tenant, id) backs the MERGEs. Relationship
 * types and hop bounds cannot be query parameters in Cypher: they are written into the
 * query text, only from the validated set of types and clamped integers.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import neo4j, { type Driver } from "neo4j-driver"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import {
  clampInt,
  edgeProblem,
  type GraphEdge,
  type GraphNode,
  influenceWeights,
  type InfluenceOptions,
  introductionTypes,
  KnowledgeGraph,
  type KnowledgeGraphShape,
  MAX_NEIGHBOURHOOD_HOPS,
  MAX_PATH_HOPS,
  mergeBatch,
  type NeighbourhoodOptions,
  type NodeKind,
  type PathOptions,
  type RelationType,
  relationTypes,
  replacementProblem,
  type StrengthenOptions
} from "./KnowledgeGraph.js"

/** Settings of the Neo4j adapter. */
export interface Neo4jSettings {
  /** `NEO4J_URL`, e.g. `neo4j://localhost:7687`. */
  readonly url: string
  /** `NEO4J_USER`. Default `neo4j`. */
  readonly user: string
  /** `NEO4J_PASSWORD`. Default empty. */
  readonly password: Redacted.Redacted
  /** `NEO4J_DATABASE`; absent: the server's default database. */
  readonly database: Option.Option<string>
}

/** Reads the settings from the environment. */
export const config: Config.Config<Neo4jSettings> = Config.all({
  url: Config.string("NEO4J_URL").pipe(Config.withDescription("Neo4j bolt/neo4j URL")),
  user: Config.string("NEO4J_USER").pipe(Config.withDefault("neo4j")),
  password: Config.redacted("NEO4J_PASSWORD").pipe(Config.withDefault(Redacted.make(""))),
  database: Config.option(Config.string("NEO4J_DATABASE"))
})

/** The Neo4j adapter's own tag (the layer also provides `KnowledgeGraph`). */
export class Neo4jGraph extends Context.Tag("nexus/storage/Neo4jGraph")<Neo4jGraph, KnowledgeGraphShape>() {}

const neo4jError = (operation: string) => (cause: unknown): StorageError => {
  const code = String((cause as { code?: unknown }).code ?? "")
  const message = `${operation}: ${cause instanceof Error ? cause.message : String(cause)}`
  if (neo4j.isRetryableError(cause as Error) || code === "ServiceUnavailable" || code === "SessionExpired") {
    return Errors.make(operation, "Unavailable", message, cause)
  }
  return Errors.make(operation, code.startsWith("Neo.ClientError") ? "Invalid" : "Unknown", message, cause)
}

const typeList = (types: ReadonlyArray<RelationType>): string => {
  const valid = types.filter((t) => relationTypes.includes(t))
  return (valid.length > 0 ? valid : relationTypes).join("|")
}

const byKey = (a: GraphEdge, b: GraphEdge) => {
  const ka = `${a.src}\u0000${a.type}\u0000${a.dst}`
  const kb = `${b.src}\u0000${b.type}\u0000${b.dst}`
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

const toNode = (r: { id: string; kind: string; name: string; props: string | null }): GraphNode => ({
  id: r.id,
  kind: r.kind as NodeKind,
  name: r.name,
  props: JSON.parse(r.props ?? "{}")
})
const toEdge = (r: { src: string; type: string; dst: string; weight: number; props: string | null }): GraphEdge => ({
  src: r.src,
  type: r.type as RelationType,
  dst: r.dst,
  weight: r.weight,
  props: JSON.parse(r.props ?? "{}")
})

const nodeFields = "n.id AS id, n.kind AS kind, n.name AS name, n.props AS props"
const edgeFields = "startNode(r).id AS src, type(r) AS type, endNode(r).id AS dst, r.weight AS weight, r.props AS props"

/** Builds the adapter over a driver. */
export const make = (driver: Driver, database: Option.Option<string>): KnowledgeGraphShape => {
  const run = <R>(operation: string, query: string, params: Record<string, unknown>, write = false) =>
    Effect.tryPromise({
      try: () =>
        driver.executeQuery(query, params, {
          routing: write ? neo4j.routing.WRITE : neo4j.routing.READ,
          ...(Option.isSome(database) ? { database: database.value } : {})
        }),
      catch: neo4jError(`Neo4jGraph.${operation}`)
    }).pipe(Effect.map((result) => result.records.map((r) => r.toObject() as R)))

  const upsertNodes = Effect.fn("Neo4jGraph.upsertNodes")(function* (tenant: TenantId, nodes: ReadonlyArray<GraphNode>) {
    const rows = [...new Map(nodes.map((n) => [n.id, n])).values()].map((n) => ({ id: n.id, kind: n.kind, name: n.name, props: JSON.stringify(n.props) }))
    for (let i = 0; i < rows.length; i += 1000) {
      yield* run("upsertNodes", `
        UNWIND $nodes AS n
        MERGE (x:Entity {tenant: $tenant, id: n.id})
        SET x.kind = n.kind, x.name = n.name, x.props = n.props`, { tenant, nodes: rows.slice(i, i + 1000) }, true)
    }
  })

  // Runs statements in one write transaction (retried whole on transient errors, deadlocks
  // included); `check` runs first and may abort it by returning a problem.
  const writeAll = (
    operation: string,
    check: { readonly query: string; readonly params: Record<string, unknown>; readonly problem: (rows: Array<Record<string, unknown>>) => string | undefined },
    statements: ReadonlyArray<{ readonly query: string; readonly params: Record<string, unknown> }>
  ) =>
    Effect.flatMap(
      Effect.tryPromise({
        try: async () => {
          const session = driver.session({ defaultAccessMode: neo4j.session.WRITE, ...(Option.isSome(database) ? { database: database.value } : {}) })
          try {
            return await session.executeWrite(async (tx) => {
              const problem = check.problem((await tx.run(check.query, check.params)).records.map((r) => r.toObject()))
              if (problem !== undefined) return problem
              for (const st of statements) await tx.run(st.query, st.params)
              return undefined
            })
          } finally {
            await session.close()
          }
        },
        catch: neo4jError(`Neo4jGraph.${operation}`)
      }),
      (problem) => (problem === undefined ? Effect.void : Effect.fail(Errors.invalid(`Neo4jGraph.${operation}`, problem)))
    )

  const nodesCheck = (tenant: TenantId, ids: ReadonlyArray<string>) => ({
    query: `
      UNWIND $ids AS id
      OPTIONAL MATCH (n:Entity {tenant: $tenant, id: id})
      WITH id, n WHERE n IS NULL RETURN id`,
    params: { tenant, ids: [...new Set(ids)] },
    problem: (rows: Array<Record<string, unknown>>) => (rows.length > 0 ? `no node ${rows.map((m) => m.id).join(", ")}` : undefined)
  })

  // One statement per relationship type and chunk (types cannot be parameters), in key order
  // so that concurrent batches take their locks in the same order.
  const perType = (tenant: TenantId, edges: ReadonlyArray<GraphEdge>, statement: (type: RelationType) => string) =>
    relationTypes.flatMap((type) => {
      const rows = edges
        .filter((e) => e.type === type)
        .sort(byKey)
        .map((e) => ({ src: e.src, dst: e.dst, weight: e.weight, props: JSON.stringify(e.props) }))
      return Array.from({ length: Math.ceil(rows.length / 1000) }, (_, i) => ({
        query: statement(type),
        params: { tenant, edges: rows.slice(i * 1000, (i + 1) * 1000) }
      }))
    })

  const upsertEdges = Effect.fn("Neo4jGraph.upsertEdges")(function* (tenant: TenantId, edges: ReadonlyArray<GraphEdge>) {
    for (const e of edges) {
      const problem = edgeProblem(e)
      if (problem !== undefined) return yield* Effect.fail(Errors.invalid("Neo4jGraph.upsertEdges", problem))
    }
    const latest = [...new Map(edges.map((e) => [`${e.src} ${e.type} ${e.dst}`, e])).values()]
    if (latest.length === 0) return
    yield* writeAll("upsertEdges", nodesCheck(tenant, latest.flatMap((e) => [e.src, e.dst])), perType(tenant, latest, (type) => `
      UNWIND $edges AS e
      MATCH (a:Entity {tenant: $tenant, id: e.src})
      MATCH (b:Entity {tenant: $tenant, id: e.dst})
      MERGE (a)-[r:${type}]->(b)
      SET r.tenant = $tenant, r.weight = e.weight, r.props = e.props`))
  })

  // MERGE between matched nodes locks them before it creates the relationship (one edge,
  // however many create it at once); the ON MATCH expression reads `r.weight` in the SET
  // itself, for which Cypher takes the write lock before reading (no lost update).
  const strengthenEdges = Effect.fn("Neo4jGraph.strengthenEdges")(function* (
    tenant: TenantId,
    edges: ReadonlyArray<GraphEdge>,
    options: StrengthenOptions = {}
  ) {
    for (const e of edges) {
      const problem = edgeProblem(e)
      if (problem !== undefined) return yield* Effect.fail(Errors.invalid("Neo4jGraph.strengthenEdges", problem))
    }
    const combine = options.combine ?? "max"
    const merged = mergeBatch(edges, combine)
    if (merged.length === 0) return
    const combined = combine === "max"
      ? "CASE WHEN r.weight >= e.weight THEN r.weight ELSE e.weight END"
      // never below either weight (rounding of 1 − (1 − s)(1 − w) for tiny weights)
      : "CASE WHEN 1.0 - (1.0 - r.weight) * (1.0 - e.weight) >= r.weight THEN 1.0 - (1.0 - r.weight) * (1.0 - e.weight) ELSE r.weight END"
    yield* writeAll("strengthenEdges", nodesCheck(tenant, merged.flatMap((e) => [e.src, e.dst])), perType(tenant, merged, (type) => `
      UNWIND $edges AS e
      MATCH (a:Entity {tenant: $tenant, id: e.src})
      MATCH (b:Entity {tenant: $tenant, id: e.dst})
      MERGE (a)-[r:${type}]->(b)
      ON CREATE SET r.tenant = $tenant, r.weight = e.weight, r.props = e.props
      ON MATCH SET r.weight = ${combined}`))
  })

  // The first statement writes a counter on the source node, for which Cypher takes the
  // node's write lock before reading it: concurrent replacements of one node's edges run one
  // after the other, each deleting what the one before it left.
  const replaceEdges = Effect.fn("Neo4jGraph.replaceEdges")(function* (
    tenant: TenantId,
    src: string,
    types: ReadonlyArray<RelationType>,
    edges: ReadonlyArray<GraphEdge>
  ) {
    const problem = replacementProblem(src, types, edges)
    if (problem !== undefined) return yield* Effect.fail(Errors.invalid("Neo4jGraph.replaceEdges", problem))
    if (types.length === 0) return
    const latest = [...new Map(edges.map((e) => [`${e.type} ${e.dst}`, e])).values()]
    yield* writeAll("replaceEdges", nodesCheck(tenant, [src, ...latest.map((e) => e.dst)]), [
      {
        query: `MATCH (a:Entity {tenant: $tenant, id: $src}) SET a.edgeWrites = coalesce(a.edgeWrites, 0) + 1`,
        params: { tenant, src }
      },
      {
        query: `
          MATCH (:Entity {tenant: $tenant, id: $src})-[r:${typeList(types)}]->(b:Entity {tenant: $tenant})
          WHERE NOT (type(r) + ' ' + b.id) IN $keep
          DELETE r`,
        params: { tenant, src, keep: latest.map((e) => `${e.type} ${e.dst}`) }
      },
      ...perType(tenant, latest, (type) => `
        UNWIND $edges AS e
        MATCH (a:Entity {tenant: $tenant, id: e.src})
        MATCH (b:Entity {tenant: $tenant, id: e.dst})
        MERGE (a)-[r:${type}]->(b)
        SET r.tenant = $tenant, r.weight = e.weight, r.props = e.props`)
    ])
  })

  const removeNode = Effect.fn("Neo4jGraph.removeNode")(function* (tenant: TenantId, id: string) {
    yield* run("removeNode", `MATCH (n:Entity {tenant: $tenant, id: $id}) DETACH DELETE n`, { tenant, id }, true)
  })

  const removeEdge = Effect.fn("Neo4jGraph.removeEdge")(function* (tenant: TenantId, src: string, type: RelationType, dst: string) {
    yield* run("removeEdge", `
      MATCH (:Entity {tenant: $tenant, id: $src})-[r:${typeList([type])}]->(:Entity {tenant: $tenant, id: $dst}) DELETE r`,
      { tenant, src, dst }, true)
  })

  const getNode = Effect.fn("Neo4jGraph.getNode")(function* (tenant: TenantId, id: string) {
    const rows = yield* run<Parameters<typeof toNode>[0]>("getNode", `MATCH (n:Entity {tenant: $tenant, id: $id}) RETURN ${nodeFields}`, { tenant, id })
    return Option.map(Option.fromNullable(rows[0]), toNode)
  })

  const edgesOf = Effect.fn("Neo4jGraph.edgesOf")(function* (tenant: TenantId, id: string) {
    const rows = yield* run<Parameters<typeof toEdge>[0]>("edgesOf", `
      MATCH (:Entity {tenant: $tenant, id: $id})-[r]-(:Entity {tenant: $tenant}) RETURN ${edgeFields}`, { tenant, id })
    return rows.map(toEdge).sort(byKey)
  })

  const neighbourhood = Effect.fn("Neo4jGraph.neighbourhood")(function* (tenant: TenantId, id: string, options: NeighbourhoodOptions = {}) {
    const center = yield* getNode(tenant, id)
    if (Option.isNone(center)) return Option.none()
    const hops = clampInt(options.hops, 1, 1, MAX_NEIGHBOURHOOD_HOPS)
    const types = typeList(options.types ?? relationTypes)
    const found = yield* run<Parameters<typeof toNode>[0] & { distance: number }>("neighbourhood", `
      MATCH (c:Entity {tenant: $tenant, id: $id})
      MATCH p = (c)-[:${types}*1..${hops}]-(n:Entity {tenant: $tenant})
      WHERE n <> c
      WITH n, min(length(p)) AS distance
      RETURN ${nodeFields}, distance ORDER BY distance, id LIMIT $limit`,
      { tenant, id, limit: neo4j.int(clampInt(options.limit, 50, 0, 10_000)) })
    const ids = [id, ...found.map((f) => f.id)]
    const edges = yield* run<Parameters<typeof toEdge>[0]>("neighbourhood", `
      MATCH (x:Entity {tenant: $tenant})-[r:${types}]->(y:Entity {tenant: $tenant})
      WHERE x.id IN $ids AND y.id IN $ids RETURN ${edgeFields}`, { tenant, ids })
    return Option.some({
      center: center.value,
      nodes: found.map((f) => ({ node: toNode(f), distance: Number(f.distance) })),
      edges: edges.map(toEdge).sort(byKey)
    })
  })

  const introductionPath = Effect.fn("Neo4jGraph.introductionPath")(function* (tenant: TenantId, from: string, to: string, options: PathOptions = {}) {
    const [a, b] = [yield* getNode(tenant, from), yield* getNode(tenant, to)]
    if (Option.isNone(a) || Option.isNone(b)) return Option.none()
    if (from === to) return Option.some({ nodes: [a.value], edges: [], warmth: 1 })
    const maxHops = clampInt(options.maxHops, 4, 1, MAX_PATH_HOPS)
    const rows = yield* run<{ ids: Array<string>; warmth: number }>("introductionPath", `
      MATCH (a:Entity {tenant: $tenant, id: $from}), (b:Entity {tenant: $tenant, id: $to})
      MATCH p = (a)-[:${typeList(options.via ?? introductionTypes)}*1..${maxHops}]-(b)
      WHERE all(n IN nodes(p) WHERE n.tenant = $tenant)
        AND all(i IN range(0, size(nodes(p)) - 2) WHERE NOT nodes(p)[i] IN nodes(p)[i + 1..])
      WITH p, reduce(w = 1.0, r IN relationships(p) | w * r.weight) AS warmth
      WITH p, warmth, [n IN nodes(p) | n.id] AS ids
      ORDER BY round(warmth * 1e9) DESC, length(p) ASC, ids ASC
      LIMIT 1
      RETURN ids, warmth, [r IN relationships(p) | {src: startNode(r).id, type: type(r), dst: endNode(r).id, weight: r.weight, props: r.props}] AS edges`,
      { tenant, from, to })
    const best = rows[0] as ({ ids: Array<string>; warmth: number; edges: Array<Parameters<typeof toEdge>[0]> }) | undefined
    if (best === undefined) return Option.none()
    const nodes = yield* run<Parameters<typeof toNode>[0]>("introductionPath", `
      UNWIND $ids AS id MATCH (n:Entity {tenant: $tenant, id: id}) RETURN ${nodeFields}`, { tenant, ids: best.ids })
    const byId = new Map(nodes.map((n) => [n.id, toNode(n)]))
    return Option.some({ nodes: best.ids.map((id) => byId.get(id)!), edges: best.edges.map(toEdge), warmth: best.warmth })
  })

  const weights: Record<string, number> = {}
  for (const [type, w] of Object.entries(influenceWeights)) {
    weights[`${type}:out`] = w.out
    weights[`${type}:in`] = w.in
  }

  const influence = Effect.fn("Neo4jGraph.influence")(function* (tenant: TenantId, options: InfluenceOptions = {}) {
    const within = options.within === undefined
      ? ""
      : "AND EXISTS { MATCH (n)-[:WORKS_AT|BELONGS_TO]->(:Entity {tenant: $tenant, id: $within}) }"
    const rows = yield* run<Parameters<typeof toNode>[0] & { score: number }>("influence", `
      MATCH (n:Entity {tenant: $tenant, kind: $kind}) WHERE true ${within}
      OPTIONAL MATCH (n)-[r]-(:Entity {tenant: $tenant})
      WITH n, sum(CASE WHEN r IS NULL THEN 0.0
                       ELSE $weights[type(r) + CASE WHEN startNode(r) = n THEN ':out' ELSE ':in' END] * r.weight END) AS score
      RETURN ${nodeFields}, score ORDER BY round(score * 1e9) DESC, id ASC LIMIT $limit`,
      { tenant, kind: options.kind ?? "contact", within: options.within ?? null, weights, limit: neo4j.int(clampInt(options.limit, 10, 0, 10_000)) })
    return rows.map((r) => ({ node: toNode(r), score: Number(r.score) }))
  })

  return {
    backend: "neo4j", upsertNodes, upsertEdges, strengthenEdges, replaceEdges, removeNode, removeEdge, getNode, edgesOf, neighbourhood, introductionPath, influence
  }
}

/** Opens a driver (closed on release), creates the constraint, and builds the adapter. */
export const layerWith = (settings: Neo4jSettings): Layer.Layer<Neo4jGraph | KnowledgeGraph, StorageError> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const driver = yield* Effect.acquireRelease(
        Effect.sync(() =>
          neo4j.driver(settings.url, neo4j.auth.basic(settings.user, Redacted.value(settings.password)), { disableLosslessIntegers: true })
        ),
        (d) => Effect.promise(() => d.close().catch(() => undefined))
      )
      const db = Option.isSome(settings.database) ? { database: settings.database.value } : {}
      yield* Effect.tryPromise({
        try: async () => {
          await driver.verifyConnectivity(db)
          await driver.executeQuery(
            "CREATE CONSTRAINT nexus_entity_key IF NOT EXISTS FOR (n:Entity) REQUIRE (n.tenant, n.id) IS UNIQUE", {}, db
          )
          await driver.executeQuery("CREATE INDEX nexus_entity_kind IF NOT EXISTS FOR (n:Entity) ON (n.tenant, n.kind)", {}, db)
        },
        catch: (cause) => Errors.unavailable("Neo4jGraph.connect")(cause)
      })
      const graph = make(driver, settings.database)
      return Context.make(Neo4jGraph, graph).pipe(Context.add(KnowledgeGraph, graph))
    })
  )

/** The Neo4j adapter configured by the environment (`NEO4J_URL`, `NEO4J_USER`, `NEO4J_PASSWORD`, `NEO4J_DATABASE`). */
export const layer = Layer.unwrapEffect(Effect.map(config, layerWith))
