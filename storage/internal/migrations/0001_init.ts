/**
 * Migration 0001: contacts, campaigns and the sandbox delivery ledger.
 * Every table is keyed by tenant first; ids use the "C" collation so that keyset paging
 * orders them byte-wise, the same on Postgres and on PGlite whatever the locale.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Creates the initial schema. One statement per call: PGlite and the extended protocol take one. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE contacts (
      tenant_id     text COLLATE "C" NOT NULL,
      id            text COLLATE "C" NOT NULL,
      name          text NOT NULL,
      email         text,
      phone         text,
      company       text NOT NULL,
      title         text NOT NULL,
      industry      text NOT NULL,
      segment       text NOT NULL CHECK (segment IN ('enterprise', 'mid-market', 'smb')),
      region        text NOT NULL,
      timezone      text NOT NULL,
      lead_score    double precision NOT NULL CHECK (lead_score >= 0 AND lead_score <= 100),
      opted_out     boolean NOT NULL DEFAULT false,
      consent_voice boolean NOT NULL DEFAULT false,
      consent_email boolean NOT NULL DEFAULT false,
      consent_sms   boolean NOT NULL DEFAULT false,
      created_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX contacts_by_score ON contacts (tenant_id, lead_score DESC, id)`

  yield* sql`
    CREATE TABLE campaigns (
      tenant_id    text COLLATE "C" NOT NULL,
      id           text COLLATE "C" NOT NULL,
      name         text NOT NULL,
      goal         text NOT NULL,
      spec         jsonb NOT NULL,
      status       text NOT NULL CHECK (status IN ('running', 'completed', 'rejected')),
      summary      jsonb,
      reason       text,
      started_at   timestamptz NOT NULL DEFAULT now(),
      completed_at timestamptz,
      PRIMARY KEY (tenant_id, id)
    )`

  yield* sql`
    CREATE TABLE deliveries (
      tenant_id       text COLLATE "C" NOT NULL,
      idempotency_key text COLLATE "C" NOT NULL,
      campaign_id     text COLLATE "C" NOT NULL,
      contact_id      text COLLATE "C" NOT NULL,
      channel         text NOT NULL CHECK (channel IN ('voice', 'email', 'sms')),
      recipient       text NOT NULL,
      subject         text,
      body            text NOT NULL,
      outcome         text NOT NULL,
      detail          text NOT NULL,
      duration_sec    double precision NOT NULL,
      transcript      text,
      created_at      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, idempotency_key)
    )`
  yield* sql`CREATE INDEX deliveries_by_campaign ON deliveries (tenant_id, campaign_id, created_at)`
})
