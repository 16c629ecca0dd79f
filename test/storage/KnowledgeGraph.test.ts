/**
 * The knowledge graph contract against the embedded adapter on a real Postgres server, and
 * against Neo4j when `NEO4J_URL` is set (skipped otherwise, saying so). The embedded adapter
 * on PGlite runs the same contract in `Embedded.test.ts`.
 */
import { describe, layer } from "@effect/vitest"
import { Layer } from "effect"
import * as Neo4jGraph from "../../storage/Neo4jGraph.js"
import * as PgGraph from "../../storage/PgGraph.js"
import * as Postgres from "../fixtures/Postgres.js"
import { graphContract } from "./contracts/GraphContract.js"

layer(PgGraph.layer.pipe(Layer.provide(Postgres.layerFresh)), { excludeTestServices: true })(
  "KnowledgeGraph contract: embedded (Postgres server)",
  (it) => graphContract(it)
)

const neo4jUrl = process.env.NEO4J_URL
describe.skipIf(neo4jUrl === undefined)("KnowledgeGraph contract: Neo4j (skipped: NEO4J_URL is not set)", () => {
  layer(Neo4jGraph.layer, { excludeTestServices: true })("Neo4j at NEO4J_URL", (it) => graphContract(it))
})
