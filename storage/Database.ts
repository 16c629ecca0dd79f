/**
 * The SQL client of the runtime, as one scoped layer per store: a Postgres server reached by
 * URL, or an embedded PGlite served on a loopback port. Either way callers get the same
 * `PgClient` (and the abstract `SqlClient`), with the schema migrated when the layer is built;
 * release closes the pool, then the socket server and PGlite.
 */
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Config, type ConfigError, Effect, Layer, Option, Redacted } from "effect"
import { join } from "node:path"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Embedded from "./internal/Embedded.js"
import * as Migrations from "./internal/Migrations.js"

/** The services a database layer provides: the concrete `PgClient` and the abstract `SqlClient`. */
export type Database = PgClient.PgClient | SqlClient.SqlClient

/** Settings of the SQL store. */
export interface DatabaseSettings {
  /** Postgres URL (`DATABASE_URL`). Absent: the embedded PGlite is used. */
  readonly url: Option.Option<Redacted.Redacted>
  /** Root of local data (`NEXUS_DATA_DIR`). Default `.nexus-data`; PGlite keeps its files in `<dir>/pglite`. */
  readonly dataDir: string
}

/** Reads the settings from the environment. */
export const config: Config.Config<DatabaseSettings> = Config.all({
  url: Config.option(
    Config.redacted("DATABASE_URL").pipe(Config.withDescription("Postgres URL; unset to use the embedded PGlite"))
  ),
  dataDir: Config.string("NEXUS_DATA_DIR").pipe(
    Config.withDefault(".nexus-data"),
    Config.withDescription("Directory of local data (the embedded database lives in <dir>/pglite)")
  )
})

/** Options of a pool to a Postgres server. */
export interface UrlOptions {
  /** Pool size. Default 10. */
  readonly maxConnections?: number
  /** Name reported to the server (`application_name`). Default `nexus`. */
  readonly applicationName?: string
}

/** Where the embedded database of a data directory lives: `<dataDir>/pglite`. */
export const embeddedDir = (dataDir: string): string => join(dataDir, "pglite")

/** The directory that makes `layerEmbedded` keep everything in memory. */
export const memory: string = Embedded.memory

/** Applies pending migrations; the layers below run it when they are built. */
export const migrate: Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, StorageError, SqlClient.SqlClient> =
  Migrations.run

// Connecting fails for want of a server (retryable) or for a rule of the server (bad
// database, bad password: not retryable); a timeout carries no code and is the former.
const connectError = (operation: string) => (cause: unknown): StorageError => {
  const code = Errors.codeOf(cause)
  return code === undefined || Errors.classify(code) === "Unavailable"
    ? Errors.unavailable(operation)(cause)
    : Errors.fromCause(operation)(cause)
}

const migrated = <E, R>(client: Layer.Layer<Database, E, R>): Layer.Layer<Database, E | StorageError, R> =>
  Layer.effectDiscard(Migrations.run).pipe(Layer.provideMerge(client))

/** A pool to the Postgres server at `url`, schema migrated; the pool is closed on release. */
export const layerUrl = (url: string | Redacted.Redacted, options: UrlOptions = {}): Layer.Layer<Database, StorageError> =>
  migrated(
    PgClient.layer({
      url: typeof url === "string" ? Redacted.make(url) : url,
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "nexus"
    }).pipe(Layer.mapError(connectError("Database.connect")))
  )

/**
 * An embedded PGlite in `dir` (created if missing; `memory://` keeps nothing), served on
 * 127.0.0.1 at a port the OS picks, schema migrated. The pool holds one connection: PGlite
 * is a single backend and queries from several connections would interleave on it.
 */
export const layerEmbedded = (dir: string): Layer.Layer<Database, StorageError> =>
  migrated(
    Layer.unwrapScoped(
      Effect.map(Embedded.serve(dir), ({ host, port }) =>
        PgClient.layer({
          host,
          port,
          username: "postgres",
          database: "postgres",
          maxConnections: 1,
          // keep the one connection: closing an idle one and reopening it gains nothing here
          idleTimeout: "0 millis",
          applicationName: "nexus-embedded"
        }).pipe(Layer.mapError(connectError("Database.connect.embedded")))
      )
    )
  )

/** The store the settings name: `layerUrl` when a URL is given, else `layerEmbedded(<dataDir>/pglite)`. */
export const layerFrom = (settings: DatabaseSettings): Layer.Layer<Database, StorageError> =>
  Option.match(settings.url, {
    onSome: (url) => layerUrl(url),
    onNone: () => layerEmbedded(embeddedDir(settings.dataDir))
  })

/** The store configured by the environment (`DATABASE_URL`, `NEXUS_DATA_DIR`). */
export const layer: Layer.Layer<Database, StorageError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, layerFrom)
)
