/**
 * The schema migrations of the storage folder and the migrator that applies them.
 * Migrations are Effects kept in a record (no file-system loader), so they bundle and run
 * the same on Postgres and PGlite; applied ids are kept in `nexus_migrations`.
 */
import type { SqlClient } from "@effect/sql"
import { PgMigrator } from "@effect/sql-pg"
import { Effect } from "effect"
import * as Errors from "../Errors.js"
import type { StorageError } from "../Errors.js"
import init from "./migrations/0001_init.js"

/** Every migration, keyed `<id>_<name>`; append only, never edit one that shipped. */
export const all: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "0001_init": init
}

/** Table recording which migrations ran. */
export const table = "nexus_migrations"

// `PgMigrator.run` also wants FileSystem/Path/CommandExecutor for `pg_dump` schema dumps,
// which we never do; the dialect-aware core with no dump step needs only the SqlClient.
const migrator = PgMigrator.make({})

/** Applies the pending migrations in one transaction (under a table lock); returns those applied. */
export const run: Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, StorageError, SqlClient.SqlClient> =
  migrator({ loader: PgMigrator.fromRecord(all), table }).pipe(
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
