/**
 * The schema migrations of the storage folder and the migrator that applies them.
 * Migrations are Effects kept in a record (no file-system loader), so they bundle and run
 * the same on Postgres and PGlite; applied ids are kept in `nexus_migrations`.
 */
import { SqlClient } from "@effect/sql"
import { PgMigrator } from "@effect/sql-pg"
import { Effect } from "effect"
import * as Errors from "../Errors.js"
import type { StorageError } from "../Errors.js"
import init from "./migrations/0001_init.js"
import records from "./migrations/0002_records.js"
import memory from "./migrations/0003_memory.js"
import security from "./migrations/0004_security.js"
import agentLedgers from "./migrations/0005_agent_ledgers.js"
import agentActions from "./migrations/0006_agent_actions.js"

/** Every migration, keyed `<id>_<name>`; append only, never edit one that shipped. */
export const all: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_init": init,
  "0002_records": records,
  "0003_memory": memory,
  "0004_security": security,
  "0005_agent_ledgers": agentLedgers,
  "0006_agent_actions": agentActions
}

/** Table recording which migrations ran. */
export const table = "nexus_migrations"

// `PgMigrator.run` also wants FileSystem/Path/CommandExecutor for `pg_dump` schema dumps,
// which we never do; the dialect-aware core with no dump step needs only the SqlClient.
const migrator = PgMigrator.make({})

// Application connections act as the restricted application role; migrations take back the
// rights of the connecting user (the schema owner) for their own transaction only. The
// migrator probes for its table with a statement that fails on a blank database, which would
// abort the enclosing transaction: the table is created first (same columns as the migrator's).
const asOwner = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      yield* sql`SET LOCAL ROLE NONE`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      return yield* migrator({ loader: PgMigrator.fromRecord(all), table })
    })
  )
})

/**
 * Applies the pending migrations in one transaction (under a table lock), with the rights of
 * the connecting user; returns those applied.
 */
export const run: Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, StorageError, SqlClient.SqlClient> =
  asOwner.pipe(
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    // two processes migrating a blank database race to create the table: the loser retries
    Effect.retry({ times: 2 }),
    Effect.mapError((cause) =>
      Errors.make("Database.migrate", "Migration", `migration failed: ${describeCause(cause)}`, cause)
    ),
    Effect.withSpan("Database.migrate")
  )

const describeCause = (cause: unknown): string => {
  const message = (cause as { message?: unknown })?.message
  const inner = (cause as { cause?: { message?: unknown; cause?: { message?: unknown } } })?.cause
  const detail = inner?.cause?.message ?? inner?.message
  return [message, detail].filter((m) => typeof m === "string" && m.length > 0).join(": ") || String(cause)
}
