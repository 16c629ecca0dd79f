/**
 * Migration 0006: what agents write into the CRM, and the ledger that makes it happen once.
 * - `tasks`: follow-up tasks for the sales team (the planner's `create_task`).
 * - `meetings`: meetings proposed to a contact, with the window they should fall in (the
 *   planner's `schedule_meeting`); booking and holding them is the calendar's business.
 * - `agent_actions`: one row per agent action with an outside effect on the records, keyed
 *   by a deterministic idempotency key (the planner step), written before the action runs,
 *   in the same transaction as its writes; a re-run finds it and writes nothing.
 * Tenant tables under the row-level security of migration 0004 (same policy); tasks and
 * meetings are audited by its trigger, like every record table.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Creates the tables. One statement per call: PGlite and the extended protocol take one. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql`
    CREATE TABLE tasks (
      tenant_id   text COLLATE "C" NOT NULL,
      id          text COLLATE "C" NOT NULL,
      title       text NOT NULL,
      contact_id  text COLLATE "C",
      campaign_id text COLLATE "C",
      due_at      timestamptz,
      status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX tasks_by_campaign ON tasks (tenant_id, campaign_id) WHERE campaign_id IS NOT NULL`

  yield* sql`
    CREATE TABLE meetings (
      tenant_id   text COLLATE "C" NOT NULL,
      id          text COLLATE "C" NOT NULL,
      contact_id  text COLLATE "C" NOT NULL,
      campaign_id text COLLATE "C",
      status      text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'booked', 'held', 'cancelled')),
      earliest    timestamptz NOT NULL,
      latest      timestamptz NOT NULL CHECK (latest >= earliest),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, id)
    )`
  yield* sql`CREATE INDEX meetings_by_contact ON meetings (tenant_id, contact_id)`

  yield* sql`
    CREATE TABLE agent_actions (
      tenant_id       text COLLATE "C" NOT NULL,
      idempotency_key text COLLATE "C" NOT NULL,
      agent           text NOT NULL,
      action          text NOT NULL,
      input           jsonb NOT NULL,
      status          text NOT NULL CHECK (status IN ('pending', 'done')),
      outcome         text,
      result          jsonb,
      trace_id        text,
      created_at      timestamptz NOT NULL DEFAULT now(),
      finished_at     timestamptz,
      PRIMARY KEY (tenant_id, idempotency_key)
    )`

  for (const table of ["tasks", "meetings", "agent_actions"]) {
    yield* sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO nexus_app`)
    yield* sql.unsafe(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`)
    yield* sql.unsafe(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`)
    yield* sql.unsafe(
      `CREATE POLICY tenant_isolation ON ${table}
         USING (tenant_id = current_setting('app.tenant_id', true))
         WITH CHECK (tenant_id = current_setting('app.tenant_id', true))`
    )
  }
  for (const table of ["tasks", "meetings"]) {
    yield* sql.unsafe(
      `CREATE TRIGGER ${table}_audit AFTER INSERT OR UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION nexus_audit('tenant_id', 'id')`
    )
  }
})
