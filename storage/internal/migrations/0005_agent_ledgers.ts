/**
 * Migration 0005: the ledgers of the agents' outside effects.
 * - `llm_calls`: one row per model call, keyed by a deterministic call key, so a re-run
 *   handler reads the recorded answer instead of paying for the call again.
 * - `channel_attempts`: one row per real-channel delivery (Vapi call, SMTP mail, SMS),
 *   written before the provider is called and finished after; it also answers the
 *   per-sender daily throttle and the per-account concurrency limit.
 * Both are tenant tables under the row-level security of migration 0004 (same policy).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Creates the two ledgers. One statement per call: PGlite and the extended protocol take one. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE llm_calls (
      tenant_id    text COLLATE "C" NOT NULL,
      call_key     text COLLATE "C" NOT NULL,
      task         text NOT NULL,
      provider     text NOT NULL,
      model        text NOT NULL,
      output       jsonb NOT NULL,
      usage        jsonb NOT NULL,
      cost_usd     double precision NOT NULL CHECK (cost_usd >= 0),
      trace        jsonb NOT NULL,
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, call_key)
    )`

  yield* sql`
    CREATE TABLE channel_attempts (
      tenant_id       text COLLATE "C" NOT NULL,
      idempotency_key text COLLATE "C" NOT NULL,
      channel         text NOT NULL CHECK (channel IN ('voice', 'email', 'sms')),
      account         text NOT NULL,
      recipient       text NOT NULL,
      status          text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
      provider_ref    text,
      outcome         text,
      detail          text,
      result          jsonb,
      created_at      timestamptz NOT NULL DEFAULT now(),
      finished_at     timestamptz,
      PRIMARY KEY (tenant_id, idempotency_key)
    )`
  yield* sql`CREATE INDEX channel_attempts_by_account ON channel_attempts (tenant_id, account, created_at)`
  yield* sql`CREATE INDEX channel_attempts_by_ref ON channel_attempts (tenant_id, provider_ref)`

  for (const table of ["llm_calls", "channel_attempts"]) {
    yield* sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO nexus_app`)
    yield* sql.unsafe(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`)
    yield* sql.unsafe(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`)
    yield* sql.unsafe(
      `CREATE POLICY tenant_isolation ON ${table}
         USING (tenant_id = current_setting('app.tenant_id', true))
         WITH CHECK (tenant_id = current_setting('app.tenant_id', true))`
    )
  }
})
