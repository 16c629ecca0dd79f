/**
 * The contract of the knowledge graph port, run against every adapter (embedded on
 * Postgres and PGlite, Neo4j when `NEO4J_URL` is set). Each suite works in fresh tenants, so
 * it may share a server with other runs.
 */
import { expect, type Vitest } from "@effect/vitest"
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import { TenantId } from "../../../protocols/Ids.js"
import {
  type GraphEdge,
  type GraphNode,
  influenceWeights,
  KnowledgeGraph,
  nodeId,
  type NodeKind
} from "../../../storage/KnowledgeGraph.js"

const freshTenant = (tag: string) => TenantId.make(`${tag}-${randomBytes(5).toString("hex")}`)

const node = (kind: NodeKind, id: string): GraphNode => ({ id: nodeId(kind, id), kind, name: id, props: { seed: id } })
const c = (id: string) => nodeId("contact", id)
const co = (id: string) => nodeId("company", id)
const edge = (src: string, type: GraphEdge["type"], dst: string, weight: number): GraphEdge => ({ src, type, dst, weight, props: {} })

const nodes: ReadonlyArray<GraphNode> = [
  ...["alice", "bob", "carol", "dave", "erin", "frank", "x", "y1", "y2", "z"].map((id) => node("contact", id)),
  node("company", "acme"),
  node("company", "globex"),
  node("product", "widget")
]

const edges: ReadonlyArray<GraphEdge> = [
  edge(c("alice"), "KNOWS", c("bob"), 0.9),
  edge(c("bob"), "KNOWS", c("carol"), 0.8),
  edge(c("carol"), "KNOWS", c("dave"), 0.9),
  edge(c("alice"), "KNOWS", c("erin"), 0.3),
  edge(c("erin"), "KNOWS", c("dave"), 0.95),
  edge(c("alice"), "WORKS_AT", co("acme"), 1),
  edge(c("dave"), "WORKS_AT", co("acme"), 0.5),
  edge(c("bob"), "REPORTS_TO", c("carol"), 0.6),
  edge(c("carol"), "INTERESTED_IN", nodeId("product", "widget"), 0.7),
  edge(co("acme"), "COMPETES_WITH", co("globex"), 1),
  // two equally warm paths x → z: the one through y1 wins (smaller ids)
  edge(c("x"), "KNOWS", c("y2"), 0.5),
  edge(c("y2"), "KNOWS", c("z"), 0.5),
  edge(c("x"), "KNOWS", c("y1"), 0.5),
  edge(c("y1"), "KNOWS", c("z"), 0.5)
]

/** The influence of every node of a kind by the documented formula, best first (ties by id). */
const expectedInfluence = (kind: NodeKind, members?: ReadonlySet<string>) =>
  nodes
    .filter((n) => n.kind === kind && (members === undefined || members.has(n.id)))
    .map((n) => ({
      id: n.id,
      score: edges.reduce(
        (s, e) => s + (e.src === n.id ? influenceWeights[e.type].out * e.weight : 0) + (e.dst === n.id ? influenceWeights[e.type].in * e.weight : 0),
        0
      )
    }))
    .sort((a, b) => Math.round(b.score * 1e9) - Math.round(a.score * 1e9) || (a.id < b.id ? -1 : 1))

const seeded = Effect.gen(function* () {
  const graph = yield* KnowledgeGraph
  const tenant = freshTenant("graph")
  yield* graph.upsertNodes(tenant, nodes)
  yield* graph.upsertEdges(tenant, edges)
  return { graph, tenant }
})

const pathIds = (p: Option.Option<{ readonly nodes: ReadonlyArray<GraphNode> }>) =>
  Option.map(p, (x) => x.nodes.map((n) => n.id))

/** Registers the contract's tests on `it` (whose environment provides a `KnowledgeGraph`). */
export const graphContract = (it: Vitest.MethodsNonLive<KnowledgeGraph, true>) => {
  it.effect("stores nodes and edges idempotently and validates them", () =>
    Effect.gen(function* () {
      const { graph, tenant } = yield* seeded
      yield* graph.upsertEdges(tenant, edges) // again: nothing new
      const aliceEdges = yield* graph.edgesOf(tenant, c("alice"))
      expect(aliceEdges.map((e) => `${e.src} ${e.type} ${e.dst} ${e.weight}`)).toEqual([
        `${c("alice")} KNOWS ${c("bob")} 0.9`,
        `${c("alice")} KNOWS ${c("erin")} 0.3`,
        `${c("alice")} WORKS_AT ${co("acme")} 1`
      ])
      yield* graph.upsertEdges(tenant, [edge(c("alice"), "KNOWS", c("erin"), 0.4)])
      expect((yield* graph.edgesOf(tenant, c("erin"))).find((e) => e.src === c("alice"))?.weight).toBe(0.4)
      expect(Option.getOrThrow(yield* graph.getNode(tenant, c("bob")))).toEqual(node("contact", "bob"))

      const badWeight = yield* graph.upsertEdges(tenant, [edge(c("alice"), "KNOWS", c("bob"), 1.5)]).pipe(Effect.flip)
      expect(badWeight.reason).toBe("Invalid")
      const missing = yield* graph.upsertEdges(tenant, [edge(c("alice"), "KNOWS", c("nobody"), 0.5)]).pipe(Effect.flip)
      expect(missing.reason).toBe("Invalid")
      expect(missing.message).toContain(c("nobody"))

      yield* graph.removeEdge(tenant, c("alice"), "KNOWS", c("erin"))
      yield* graph.removeNode(tenant, c("bob"))
      expect(yield* graph.getNode(tenant, c("bob"))).toEqual(Option.none())
      expect((yield* graph.edgesOf(tenant, c("alice"))).map((e) => e.dst)).toEqual([co("acme")])
      expect((yield* graph.edgesOf(tenant, c("carol"))).some((e) => e.src === c("bob"))).toBe(false)
    }))

  it.effect("finds the warmest introduction path within the hop limit and the allowed types", () =>
    Effect.gen(function* () {
      const { graph, tenant } = yield* seeded
      const best = Option.getOrThrow(yield* graph.introductionPath(tenant, c("alice"), c("dave")))
      expect(best.nodes.map((n) => n.id)).toEqual([c("alice"), c("bob"), c("carol"), c("dave")])
      expect(best.warmth).toBeCloseTo(0.9 * 0.8 * 0.9, 9)
      expect(best.edges.map((e) => `${e.src} ${e.type} ${e.dst}`)).toEqual([
        `${c("alice")} KNOWS ${c("bob")}`,
        `${c("bob")} KNOWS ${c("carol")}`,
        `${c("carol")} KNOWS ${c("dave")}`
      ])
      // reversed: the same path backwards, edges as stored
      expect(pathIds(yield* graph.introductionPath(tenant, c("dave"), c("alice")))).toEqual(
        Option.some([c("dave"), c("carol"), c("bob"), c("alice")])
      )
      expect(pathIds(yield* graph.introductionPath(tenant, c("alice"), c("dave"), { maxHops: 2 }))).toEqual(
        Option.some([c("alice"), co("acme"), c("dave")])
      )
      const knowsOnly = Option.getOrThrow(yield* graph.introductionPath(tenant, c("alice"), c("dave"), { maxHops: 2, via: ["KNOWS"] }))
      expect(knowsOnly.nodes.map((n) => n.id)).toEqual([c("alice"), c("erin"), c("dave")])
      expect(knowsOnly.warmth).toBeCloseTo(0.3 * 0.95, 9)
      expect(pathIds(yield* graph.introductionPath(tenant, c("x"), c("z")))).toEqual(Option.some([c("x"), c("y1"), c("z")]))
      expect(yield* graph.introductionPath(tenant, c("alice"), c("frank"))).toEqual(Option.none())
      expect(yield* graph.introductionPath(tenant, c("alice"), c("nobody"))).toEqual(Option.none())
      expect(pathIds(yield* graph.introductionPath(tenant, c("alice"), c("alice")))).toEqual(Option.some([c("alice")]))
    }))

  it.effect("returns the neighbourhood nearest first with the edges among it", () =>
    Effect.gen(function* () {
      const { graph, tenant } = yield* seeded
      const one = Option.getOrThrow(yield* graph.neighbourhood(tenant, c("alice")))
      expect(one.center.id).toBe(c("alice"))
      expect(one.nodes.map((n) => [n.node.id, n.distance])).toEqual([[co("acme"), 1], [c("bob"), 1], [c("erin"), 1]])
      expect(one.edges.map((e) => `${e.src} ${e.type} ${e.dst}`)).toEqual([
        `${c("alice")} KNOWS ${c("bob")}`,
        `${c("alice")} KNOWS ${c("erin")}`,
        `${c("alice")} WORKS_AT ${co("acme")}`
      ])
      const two = Option.getOrThrow(yield* graph.neighbourhood(tenant, c("alice"), { hops: 2 }))
      expect(two.nodes.map((n) => [n.node.id, n.distance])).toEqual([
        [co("acme"), 1], [c("bob"), 1], [c("erin"), 1], [co("globex"), 2], [c("carol"), 2], [c("dave"), 2]
      ])
      expect(two.edges.length).toBe(9)
      const knows = Option.getOrThrow(yield* graph.neighbourhood(tenant, c("alice"), { hops: 2, types: ["KNOWS"], limit: 2 }))
      expect(knows.nodes.map((n) => n.node.id)).toEqual([c("bob"), c("erin")])
      expect(yield* graph.neighbourhood(tenant, c("nobody"))).toEqual(Option.none())
    }))

  it.effect("ranks influence by weighted degree, tenant-wide or within a company", () =>
    Effect.gen(function* () {
      const { graph, tenant } = yield* seeded
      const top = yield* graph.influence(tenant, { limit: 5 })
      const want = expectedInfluence("contact").slice(0, 5)
      expect(top.map((t) => t.node.id)).toEqual(want.map((w) => w.id))
      top.forEach((t, i) => expect(t.score).toBeCloseTo(want[i]!.score, 9))
      const atAcme = yield* graph.influence(tenant, { within: co("acme") })
      expect(atAcme.map((t) => t.node.id)).toEqual(expectedInfluence("contact", new Set([c("alice"), c("dave")])).map((w) => w.id))
      const companies = yield* graph.influence(tenant, { kind: "company" })
      expect(companies.map((t) => t.node.id)).toEqual(expectedInfluence("company").map((w) => w.id))
    }))

  it.effect("keeps tenants apart", () =>
    Effect.gen(function* () {
      const { graph, tenant } = yield* seeded
      const other = freshTenant("graph-other")
      expect(yield* graph.getNode(other, c("alice"))).toEqual(Option.none())
      expect(yield* graph.introductionPath(other, c("alice"), c("dave"))).toEqual(Option.none())
      expect(yield* graph.influence(other)).toEqual([])
      // the other tenant may use the same ids without touching the first
      yield* graph.upsertNodes(other, [node("contact", "alice"), node("contact", "dave")])
      yield* graph.upsertEdges(other, [edge(c("alice"), "KNOWS", c("dave"), 0.1)])
      expect(pathIds(yield* graph.introductionPath(other, c("alice"), c("dave")))).toEqual(Option.some([c("alice"), c("dave")]))
      expect((yield* graph.edgesOf(tenant, c("alice"))).length).toBe(3)
    }))

  it.effect("strengthens edges atomically: concurrent updates of one edge are all kept, and make one edge", () =>
    Effect.gen(function* () {
      const graph = yield* KnowledgeGraph
      const tenant = freshTenant("graph-race")
      const widget = nodeId("product", "widget")
      yield* graph.upsertNodes(tenant, [node("contact", "p"), node("contact", "q"), node("product", "widget"), ...["m0", "m1", "m2", "m3", "m4", "m5"].map((id) => node("event", id))])
      const n = 40
      const all = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>) => Effect.all(effects, { concurrency: "unbounded", discard: true })
      const only = (edges: ReadonlyArray<GraphEdge>, type: GraphEdge["type"]) => edges.filter((e) => e.type === type)

      // accumulate: the edge does not exist when the updates start; every one of them counts
      yield* all(Array.from({ length: n }, () => graph.strengthenEdges(tenant, [edge(c("p"), "KNOWS", c("q"), 0.05)], { combine: "accumulate" })))
      const knows = only(yield* graph.edgesOf(tenant, c("p")), "KNOWS")
      expect(knows.length, "concurrent creations make one edge").toBe(1)
      expect(knows[0]!.weight, `${n} accumulated updates of 0.05`).toBeCloseTo(1 - 0.95 ** n, 9)

      // max: in whatever order they land, the strongest update wins and a weaker one never lowers it
      const weights = Array.from({ length: n }, (_, i) => ((i * 17) % n + 1) / n) // 1/n … 1, shuffled
      yield* all(weights.map((w) => graph.strengthenEdges(tenant, [edge(c("p"), "INTERESTED_IN", widget, w * 0.9)])))
      yield* graph.strengthenEdges(tenant, [edge(c("p"), "INTERESTED_IN", widget, 0.1)])
      const interest = only(yield* graph.edgesOf(tenant, c("p")), "INTERESTED_IN")
      expect(interest.map((e) => e.weight)).toEqual([0.9])

      // updates of different edges of one contact, at once, all land; duplicates in a batch combine
      yield* all(["m0", "m1", "m2", "m3", "m4", "m5"].map((m) =>
        graph.strengthenEdges(tenant, [edge(c("p"), "ATTENDED", nodeId("event", m), 0.5), edge(c("p"), "ATTENDED", nodeId("event", m), 0.5)], { combine: "accumulate" })
      ))
      expect(only(yield* graph.edgesOf(tenant, c("p")), "ATTENDED").map((e) => [e.dst, e.weight])).toEqual(
        ["m0", "m1", "m2", "m3", "m4", "m5"].map((m) => [nodeId("event", m), 0.75])
      )

      // replacing writes are atomic too: one edge, with one of the weights written
      yield* all(weights.map((w) => graph.upsertEdges(tenant, [edge(c("q"), "KNOWS", c("p"), w)])))
      const back = only(yield* graph.edgesOf(tenant, c("q")), "KNOWS").filter((e) => e.src === c("q"))
      expect(back.length).toBe(1)
      expect(weights).toContain(back[0]!.weight)

      // invalid input fails as with upsertEdges
      expect((yield* graph.strengthenEdges(tenant, [edge(c("p"), "KNOWS", c("nobody"), 0.5)]).pipe(Effect.flip)).reason).toBe("Invalid")
      expect((yield* graph.strengthenEdges(tenant, [edge(c("p"), "KNOWS", c("q"), 0)]).pipe(Effect.flip)).reason).toBe("Invalid")
    }))

  it.effect("replaces a node's edges atomically: concurrent replacements never leave a mix", () =>
    Effect.gen(function* () {
      const graph = yield* KnowledgeGraph
      const tenant = freshTenant("graph-replace")
      const companies = Array.from({ length: 8 }, (_, i) => `co${i}`)
      yield* graph.upsertNodes(tenant, [node("contact", "p"), node("contact", "boss"), ...companies.map((id) => node("company", id))])
      yield* graph.upsertEdges(tenant, [edge(c("p"), "KNOWS", c("boss"), 0.4)])
      const worksAt = (edges: ReadonlyArray<GraphEdge>) => edges.filter((e) => e.src === c("p") && e.type === "WORKS_AT").map((e) => e.dst)

      // every replacement reads as "p works at exactly this one company"; at once, one wins whole
      yield* Effect.all(companies.map((id) => graph.replaceEdges(tenant, c("p"), ["WORKS_AT", "REPORTS_TO"], [edge(c("p"), "WORKS_AT", co(id), 1)])), {
        concurrency: "unbounded",
        discard: true
      })
      const after = worksAt(yield* graph.edgesOf(tenant, c("p")))
      expect(after.length, `one WORKS_AT edge, not ${after.join(", ")}`).toBe(1)
      expect(companies.map(co)).toContain(after[0])

      // edges of other types stay; an empty replacement removes those of the types named
      yield* graph.replaceEdges(tenant, c("p"), ["WORKS_AT", "REPORTS_TO"], [edge(c("p"), "REPORTS_TO", c("boss"), 0.8)])
      expect((yield* graph.edgesOf(tenant, c("p"))).map((e) => `${e.type} ${e.dst} ${e.weight}`)).toEqual([`KNOWS ${c("boss")} 0.4`, `REPORTS_TO ${c("boss")} 0.8`])
      yield* graph.replaceEdges(tenant, c("p"), ["REPORTS_TO"], [])
      expect((yield* graph.edgesOf(tenant, c("p"))).map((e) => e.type)).toEqual(["KNOWS"])

      // an edge that is not one of the node's edges of those types, or a missing node, is refused
      const foreign = yield* graph.replaceEdges(tenant, c("p"), ["WORKS_AT"], [edge(c("boss"), "WORKS_AT", co("co1"), 1)]).pipe(Effect.flip)
      expect(foreign.reason).toBe("Invalid")
      expect((yield* graph.replaceEdges(tenant, c("nobody"), ["WORKS_AT"], []).pipe(Effect.flip)).reason).toBe("Invalid")
    }))
}
