/**
 * Migration 0004: tenant isolation and auditing.
 *
 * - The application role `nexus_app` (no login, not superuser, no BYPASSRLS) gets only the
 *   rights it needs: read/write on tenant tables, append-only on the audit log and consent
 *   events, nothing on the migration table.
 * - Every table with a `tenant_id` (and `tenants` by its id) gets row-level security, forced
 *   so that even a non-superuser owner is bound by it, with one policy: rows of the tenant in
 *   `app.tenant_id`, for reading and for writing. No tenant set: no rows.
 * - An audit trigger on the record tables writes who changed what (`app.actor`, `app.via_agent`,
 *   `app.trace_id`, set by `Tenancy.withTenant`) with the new row or the changed columns.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** Tables whose rows belong to one tenant through their `tenant_id` column. */
const tenantTables = [
  "contacts", "campaigns", "deliveries", "companies", "deals", "activities", "consent_events", "audit_log",
  "episodes", "episode_contacts", "episode_mentions", "graph_nodes", "graph_edges", "vector_heads",
  "vector_points", "ingested_events"
] as const

/** Tables the application may only read and append to. */
const appendOnly: ReadonlySet<string> = new Set(["audit_log", "consent_events"])

/** Audited tables: name → key columns written as the row key. */
const audited: ReadonlyArray<readonly [table: string, tenantColumn: string, keys: ReadonlyArray<string>]> = [
  ["tenants", "id", ["id"]],
  ["contacts", "tenant_id", ["id"]],
  ["companies", "tenant_id", ["id"]],
  ["deals", "tenant_id", ["id"]],
  ["activities", "tenant_id", ["id"]],
  ["campaigns", "tenant_id", ["id"]],
  ["consent_events", "tenant_id", ["id"]]
]

// TG_ARGV[0] names the tenant column, the rest the key columns. An update that changes
// nothing (an idempotent upsert) writes no audit row.
const auditFunction = `
CREATE FUNCTION nexus_audit() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cur  jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
  prev jsonb := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE to_jsonb(OLD) END;
  diff jsonb;
  k    text := '';
BEGIN
  IF TG_OP = 'UPDATE' THEN
    SELECT jsonb_object_agg(n.key, jsonb_build_object('from', prev -> n.key, 'to', n.value)) INTO diff
      FROM jsonb_each(cur) n WHERE n.value IS DISTINCT FROM prev -> n.key;
    IF diff IS NULL THEN RETURN NULL; END IF;
  ELSIF TG_OP = 'INSERT' THEN
    diff := cur;
  ELSE
    diff := prev;
  END IF;
  FOR i IN 1 .. TG_NARGS - 1 LOOP
    k := k || CASE WHEN i > 1 THEN '/' ELSE '' END || coalesce(cur ->> TG_ARGV[i], '');
  END LOOP;
  INSERT INTO audit_log (tenant_id, table_name, row_key, op, actor, via_agent, trace_id, changes)
  VALUES (cur ->> TG_ARGV[0], TG_TABLE_NAME, k, lower(TG_OP),
          coalesce(nullif(current_setting('app.actor', true), ''), session_user::text),
          nullif(current_setting('app.via_agent', true), ''),
          nullif(current_setting('app.trace_id', true), ''),
          diff);
  RETURN NULL;
END
$fn$`

// Roles are shared by every database of a server: another database may be creating it at the
// same moment, and the loser of that race sees a duplicate. A non-superuser owner must be a
// member of the role to switch to it.
const createRole = `
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nexus_app') THEN
    BEGIN
      CREATE ROLE nexus_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT nexus_app TO %I', current_user);
  END IF;
END
$do$`

/** Creates the role, grants, policies and audit triggers. One statement per call. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  yield* sql.unsafe(createRole)
  yield* sql.unsafe(`GRANT USAGE ON SCHEMA public TO nexus_app`)
  for (const table of tenantTables) {
    const rights = appendOnly.has(table) ? "SELECT, INSERT" : "SELECT, INSERT, UPDATE, DELETE"
    yield* sql.unsafe(`GRANT ${rights} ON ${table} TO nexus_app`)
    yield* sql.unsafe(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`)
    yield* sql.unsafe(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`)
    yield* sql.unsafe(
      `CREATE POLICY tenant_isolation ON ${table}
         USING (tenant_id = current_setting('app.tenant_id', true))
         WITH CHECK (tenant_id = current_setting('app.tenant_id', true))`
    )
  }
  yield* sql.unsafe(`GRANT SELECT, INSERT, UPDATE ON tenants TO nexus_app`)
  yield* sql.unsafe(`ALTER TABLE tenants ENABLE ROW LEVEL SECURITY`)
  yield* sql.unsafe(`ALTER TABLE tenants FORCE ROW LEVEL SECURITY`)
  yield* sql.unsafe(
    `CREATE POLICY tenant_isolation ON tenants
       USING (id = current_setting('app.tenant_id', true))
       WITH CHECK (id = current_setting('app.tenant_id', true))`
  )
  // collection definitions are shared by all tenants (a name and a dimension, no data)
  yield* sql.unsafe(`GRANT SELECT, INSERT ON vector_collections TO nexus_app`)

  yield* sql.unsafe(auditFunction)
  for (const [table, tenantColumn, keys] of audited) {
    const args = [tenantColumn, ...keys].map((a) => `'${a}'`).join(", ")
    yield* sql.unsafe(
      `CREATE TRIGGER ${table}_audit AFTER INSERT OR UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION nexus_audit(${args})`
    )
  }
})
