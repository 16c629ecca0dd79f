/**
 * Migration 0002: the CRM records beside contacts and campaigns: tenants, companies, deals,
 * activities, consent events (grants, revocations, opt-outs) and the audit log. Every table
 * is keyed by tenant first, like those of 0001.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Creates the record tables. One statement per call: PGlite and the extended protocol take one. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE tenants (
      id         text COLLATE "C" PRIMARY KEY,
      name       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`

  yield* sql`
    CREATE TABLE companies (
      tenant_id  text COLLATE "C" NOT NULL,
      id         text COLLATE "C" NOT NULL,
      name       text NOT NULL,
      domain     text,
      industry   text,
      region     text,
      segment    text CHECK (segment IN ('enterprise', 'mid-market', 'smb')),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`

  yield* sql`ALTER TABLE contacts ADD COLUMN company_id text COLLATE "C"`
  yield* sql`CREATE INDEX contacts_by_company ON contacts (tenant_id, company_id) WHERE company_id IS NOT NULL`

  yield* sql`
    CREATE TABLE deals (
      tenant_id      text COLLATE "C" NOT NULL,
      id             text COLLATE "C" NOT NULL,
      name           text NOT NULL,
      company_id     text COLLATE "C",
      contact_id     text COLLATE "C",
      stage          text NOT NULL CHECK (stage IN ('prospect', 'qualified', 'proposal', 'negotiation', 'won', 'lost')),
      amount         double precision NOT NULL DEFAULT 0 CHECK (amount >= 0),
      currency       text NOT NULL DEFAULT 'USD',
      products       text[] NOT NULL DEFAULT '{}',
      expected_close timestamptz,
      created_at     timestamptz NOT NULL DEFAULT now(),
      updated_at     timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX deals_by_company ON deals (tenant_id, company_id)`

  yield* sql`
    CREATE TABLE activities (
      tenant_id   text COLLATE "C" NOT NULL,
      id          text COLLATE "C" NOT NULL,
      kind        text NOT NULL CHECK (kind IN ('call', 'email', 'meeting', 'sms', 'note', 'task')),
      contact_id  text COLLATE "C",
      company_id  text COLLATE "C",
      deal_id     text COLLATE "C",
      subject     text NOT NULL,
      occurred_at timestamptz NOT NULL,
      episode_id  text COLLATE "C",
      created_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX activities_by_contact ON activities (tenant_id, contact_id, occurred_at DESC)`
  yield* sql`CREATE INDEX activities_by_deal ON activities (tenant_id, deal_id, occurred_at DESC) WHERE deal_id IS NOT NULL`

  yield* sql`
    CREATE TABLE consent_events (
      tenant_id   text COLLATE "C" NOT NULL,
      id          bigint GENERATED ALWAYS AS IDENTITY,
      contact_id  text COLLATE "C" NOT NULL,
      channel     text NOT NULL CHECK (channel IN ('voice', 'email', 'sms', 'all')),
      status      text NOT NULL CHECK (status IN ('granted', 'revoked', 'opted-out', 'opted-in')),
      source      text NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX consent_by_contact ON consent_events (tenant_id, contact_id, id DESC)`

  yield* sql`
    CREATE TABLE audit_log (
      tenant_id  text COLLATE "C" NOT NULL,
      id         bigint GENERATED ALWAYS AS IDENTITY,
      at         timestamptz NOT NULL DEFAULT clock_timestamp(),
      table_name text NOT NULL,
      row_key    text NOT NULL,
      op         text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
      actor      text NOT NULL,
      via_agent  text,
      trace_id   text,
      changes    jsonb NOT NULL,
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX audit_by_row ON audit_log (tenant_id, table_name, row_key, id)`
  yield* sql`CREATE INDEX audit_by_trace ON audit_log (tenant_id, trace_id) WHERE trace_id IS NOT NULL`
})
