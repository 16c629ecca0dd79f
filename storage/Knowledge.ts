/**
 * The triple-layer knowledge store as one set of layers over a database: records, audit log
 * and consent, episodic memory, the knowledge graph, the vector store, embeddings, entity
 * extraction, ingestion and context assembly. Which graph, vector and embedding backends
 * are used is configuration, never code:
 *
 * - `NEO4J_URL` set → Neo4j, else the embedded graph on Postgres;
 * - `QDRANT_URL` set → Qdrant, else the embedded vector store on Postgres;
 * - `NEXUS_EMBEDDINGS=openai` → OpenAI, else the offline hashed embedding.
 */
import type { SqlClient } from "@effect/sql"
import { Config, type ConfigError, Effect, Layer, Option } from "effect"
import * as AuditLog from "./AuditLog.js"
import * as Consent from "./Consent.js"
import * as ContactContext from "./ContactContext.js"
import type { ContactRepo } from "./ContactRepo.js"
import * as Embeddings from "./Embeddings.js"
import type { StorageError } from "./Errors.js"
import * as EpisodicMemory from "./EpisodicMemory.js"
import * as Extraction from "./Extraction.js"
import * as Ingestion from "./Ingestion.js"
import type { KnowledgeGraph } from "./KnowledgeGraph.js"
import * as Neo4jGraph from "./Neo4jGraph.js"
import * as PgGraph from "./PgGraph.js"
import * as PgVectorStore from "./PgVectorStore.js"
import * as QdrantVectorStore from "./QdrantVectorStore.js"
import * as Records from "./Records.js"
import type { VectorStore } from "./VectorStore.js"

/** Every service of the knowledge store. */
export type Services =
  | Records.Records
  | AuditLog.AuditLog
  | Consent.Consent
  | EpisodicMemory.EpisodicMemory
  | KnowledgeGraph
  | VectorStore
  | Embeddings.Embeddings
  | Extraction.EntityExtractor
  | Ingestion.Ingestion
  | ContactContext.ContactContext

/** The graph the environment names: Neo4j when `NEO4J_URL` is set, else the embedded one. */
export const graphLayer: Layer.Layer<KnowledgeGraph, StorageError | ConfigError.ConfigError, SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.map(
    Config.option(Config.string("NEO4J_URL")),
    (url): Layer.Layer<KnowledgeGraph, StorageError | ConfigError.ConfigError, SqlClient.SqlClient> =>
      Option.isSome(url) ? Neo4jGraph.layer : PgGraph.layer
  )
)

/** The vector store the environment names: Qdrant when `QDRANT_URL` is set, else the embedded one. */
export const vectorLayer: Layer.Layer<VectorStore, ConfigError.ConfigError, SqlClient.SqlClient> = Layer.unwrapEffect(
  Effect.map(
    Config.option(Config.string("QDRANT_URL")),
    (url): Layer.Layer<VectorStore, ConfigError.ConfigError, SqlClient.SqlClient> =>
      Option.isSome(url) ? QdrantVectorStore.layer : PgVectorStore.layer
  )
)

/** Builds the store from its three backends, over a database and the contact repository. */
export const layerWith = <E1, E2, E3, R1, R2, R3>(backends: {
  readonly graph: Layer.Layer<KnowledgeGraph, E1, R1>
  readonly vectors: Layer.Layer<VectorStore, E2, R2>
  readonly embeddings: Layer.Layer<Embeddings.Embeddings, E3, R3>
}) => {
  const base = Layer.mergeAll(
    Records.layer,
    AuditLog.layer,
    Consent.layer,
    EpisodicMemory.layer,
    backends.graph,
    backends.vectors,
    backends.embeddings,
    Extraction.layerRules
  )
  return Layer.mergeAll(Ingestion.layer, ContactContext.layer).pipe(Layer.provideMerge(base))
}

/** The store configured by the environment (see the module header). */
export const layer = layerWith({ graph: graphLayer, vectors: vectorLayer, embeddings: Embeddings.layer })

/** The store on embedded backends only: the Postgres graph and vectors, the offline embedding. */
export const layerEmbedded = layerWith({ graph: PgGraph.layer, vectors: PgVectorStore.layer, embeddings: Embeddings.layerHashed() })

/** What the knowledge layers need from outside: a database and the contact repository. */
export type Requirements = SqlClient.SqlClient | ContactRepo
