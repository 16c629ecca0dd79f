/**
 * The embedded adapters on the embedded database: one in-memory PGlite (served to the pg
 * driver through pglite-socket, running as its superuser) carries the row-level security,
 * knowledge graph and vector contracts, the same suites the Postgres server runs.
 */
import { layer } from "@effect/vitest"
import { Layer } from "effect"
import * as AuditLog from "../../storage/AuditLog.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as PgGraph from "../../storage/PgGraph.js"
import * as PgVectorStore from "../../storage/PgVectorStore.js"
import { graphContract } from "./contracts/GraphContract.js"
import { tenancyContract } from "./contracts/TenancyContract.js"
import { vectorContract } from "./contracts/VectorContract.js"

const Env = Layer.mergeAll(
  ContactRepo.layer,
  AuditLog.layer,
  PgGraph.layer,
  PgVectorStore.layerWith({ cacheBytes: 64 * 1024 * 1024, pageSize: 500 })
).pipe(Layer.provideMerge(Database.layerEmbedded(Database.memory)))

layer(Env, { excludeTestServices: true, timeout: 60_000 })("embedded PGlite", (it) => {
  it.layer(Layer.empty)("Tenancy: row-level security", (it) => tenancyContract(it))
  it.layer(Layer.empty)("KnowledgeGraph contract: embedded", (it) => graphContract(it))
  it.layer(Layer.empty)("VectorStore contract: embedded", (it) => vectorContract(it))
})
