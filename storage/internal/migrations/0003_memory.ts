/**
 * Migration 0003: the knowledge layers kept in Postgres: episodic memory (episodes, who took
 * part, what was mentioned), the embedded knowledge graph (nodes, typed weighted edges), the
 * embedded vector store (float32 vectors as bytea, with a per-collection revision so that
 * in-process caches catch up incrementally) and the inbox of ingested external events.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Creates the memory, graph and vector tables. One statement per call. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE episodes (
      tenant_id    text COLLATE "C" NOT NULL,
      id           text COLLATE "C" NOT NULL,
      channel      text NOT NULL CHECK (channel IN ('voice', 'email', 'sms', 'meeting', 'chat', 'note')),
      direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
      occurred_at  timestamptz NOT NULL,
      duration_sec double precision,
      outcome      text,
      summary      text,
      content      text NOT NULL,
      entities     jsonb NOT NULL,
      participants jsonb NOT NULL,
      campaign_id  text COLLATE "C",
      deal_id      text COLLATE "C",
      source       text NOT NULL,
      recorded_by  text NOT NULL,
      via_agent    text,
      trace_id     text,
      search       tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(summary, '') || ' ' || content)) STORED,
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX episodes_search ON episodes USING gin (search)`
  yield* sql`CREATE INDEX episodes_by_time ON episodes (tenant_id, occurred_at DESC)`

  yield* sql`
    CREATE TABLE episode_contacts (
      tenant_id   text COLLATE "C" NOT NULL,
      contact_id  text COLLATE "C" NOT NULL,
      occurred_at timestamptz NOT NULL,
      episode_id  text COLLATE "C" NOT NULL,
      PRIMARY KEY (tenant_id, contact_id, occurred_at, episode_id)
    )`

  yield* sql`
    CREATE TABLE episode_mentions (
      tenant_id   text COLLATE "C" NOT NULL,
      episode_id  text COLLATE "C" NOT NULL,
      kind        text NOT NULL CHECK (kind IN ('product', 'objection', 'objection-resolved', 'next-step')),
      term        text NOT NULL,
      label       text NOT NULL,
      occurred_at timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, episode_id, kind, term)
    )`
  yield* sql`CREATE INDEX mentions_by_term ON episode_mentions (tenant_id, term, occurred_at DESC)`

  yield* sql`
    CREATE TABLE graph_nodes (
      tenant_id  text COLLATE "C" NOT NULL,
      id         text COLLATE "C" NOT NULL,
      kind       text NOT NULL,
      name       text NOT NULL,
      props      jsonb NOT NULL DEFAULT '{}',
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX graph_nodes_by_kind ON graph_nodes (tenant_id, kind, id)`

  yield* sql`
    CREATE TABLE graph_edges (
      tenant_id  text COLLATE "C" NOT NULL,
      src        text COLLATE "C" NOT NULL,
      type       text NOT NULL CHECK (type IN ('WORKS_AT', 'REPORTS_TO', 'KNOWS', 'INTERESTED_IN', 'PURCHASED',
                   'ATTENDED', 'SIMILAR_TO', 'REFERRED_BY', 'COMPETES_WITH', 'PARTNERS_WITH', 'LOCATED_IN', 'BELONGS_TO')),
      dst        text COLLATE "C" NOT NULL,
      weight     double precision NOT NULL CHECK (weight > 0 AND weight <= 1),
      props      jsonb NOT NULL DEFAULT '{}',
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, src, type, dst),
      CHECK (src <> dst),
      FOREIGN KEY (tenant_id, src) REFERENCES graph_nodes (tenant_id, id) ON DELETE CASCADE,
      FOREIGN KEY (tenant_id, dst) REFERENCES graph_nodes (tenant_id, id) ON DELETE CASCADE
    )`
  yield* sql`CREATE INDEX graph_edges_in ON graph_edges (tenant_id, dst, type)`

  yield* sql`
    CREATE TABLE vector_collections (
      name       text COLLATE "C" PRIMARY KEY,
      dimension  integer NOT NULL CHECK (dimension > 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`

  yield* sql`
    CREATE TABLE vector_heads (
      tenant_id  text COLLATE "C" NOT NULL,
      collection text COLLATE "C" NOT NULL,
      rev        bigint NOT NULL,
      PRIMARY KEY (tenant_id, collection)
    )`

  yield* sql`
    CREATE TABLE vector_points (
      tenant_id  text COLLATE "C" NOT NULL,
      collection text COLLATE "C" NOT NULL,
      id         text COLLATE "C" NOT NULL,
      rev        bigint NOT NULL,
      vector     bytea,
      payload    jsonb NOT NULL DEFAULT '{}',
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, collection, id)
    )`
  yield* sql`CREATE INDEX vector_points_by_rev ON vector_points (tenant_id, collection, rev, id)`

  yield* sql`
    CREATE TABLE ingested_events (
      tenant_id    text COLLATE "C" NOT NULL,
      event_id     text COLLATE "C" NOT NULL,
      type         text NOT NULL,
      trace_id     text,
      processed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, event_id)
    )`
})
