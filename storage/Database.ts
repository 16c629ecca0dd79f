/**
 * The SQL client of the runtime, as one scoped layer per store: a Postgres server reached by
 * URL, or an embedded PGlite served on a loopback port. Either way callers get the same
 * `PgClient` (and the abstract `SqlClient`), with the schema migrated when the layer is built
 * and every connection acting as the application role (`Tenancy.appRole`, subject to
 * row-level security) and pipelining its queries (so a tenant scope's opening statements
 * cost no round trip of their own); release closes the pool, then the socket server and
 * PGlite.
 */
import type { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import Pg from "pg"
import { Config, type ConfigError, Effect, Layer, Option, Redacted } from "effect"
import { join } from "node:path"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import { coalesceWrites } from "./internal/CoalescedWrites.js"
import * as Embedded from "./internal/Embedded.js"
import * as Migrations from "./internal/Migrations.js"
import * as Tenancy from "./Tenancy.js"

/** The services a database layer provides: the concrete `PgClient` and the abstract `SqlClient`. */
export type Database = PgClient.PgClient | SqlClient.SqlClient

/** Settings of the SQL store. */
export interface DatabaseSettings {
  /** Postgres URL (`DATABASE_URL`). Absent: the embedded PGlite is used. */
  readonly url: Option.Option<Redacted.Redacted>
  /** Root of local data (`NEXUS_DATA_DIR`). Default `.nexus-data`; PGlite keeps its files in `<dir>/pglite`. */
  readonly dataDir: string
  /**
   * Whether queries with parameters run as named prepared statements (`NEXUS_PG_PREPARE`,
   * default true; see `UrlOptions.prepare`). Off behind a pooler in transaction mode.
   */
  readonly prepare: boolean
}

/** Reads the settings from the environment. */
export const config: Config.Config<DatabaseSettings> = Config.all({
  url: Config.option(
    Config.redacted("DATABASE_URL").pipe(Config.withDescription("Postgres URL; unset to use the embedded PGlite"))
  ),
  dataDir: Config.string("NEXUS_DATA_DIR").pipe(
    Config.withDefault(".nexus-data"),
    Config.withDescription("Directory of local data (the embedded database lives in <dir>/pglite)")
  ),
  prepare: Config.boolean("NEXUS_PG_PREPARE").pipe(
    Config.withDefault(true),
    Config.withDescription("Run parameterised queries as named prepared statements (turn off behind a pooler in transaction mode)")
  )
})

/** Options of a pool to a Postgres server. */
export interface UrlOptions {
  /** Pool size. Default 10. */
  readonly maxConnections?: number
  /** Name reported to the server (`application_name`). Default `nexus`. */
  readonly applicationName?: string
  /**
   * Whether queries with parameters run as named prepared statements: each connection
   * parses and analyses a statement once, then only binds and executes it. Default true.
   * Turn it off behind a connection pooler in transaction mode (older PgBouncer), where a
   * statement prepared on one server connection is unknown on the next.
   */
  readonly prepare?: boolean
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

// Migrations run as the connecting (owner) user on a connection of their own, closed once
// they are done; application queries then use a pool whose connections act as `appRole`.
const migrateWith = <E>(owner: Layer.Layer<Database, E>): Effect.Effect<void, E | StorageError> =>
  Effect.asVoid(Effect.provide(Migrations.run, owner))

// A pg client that switches to the application role as part of connecting: the pool hands
// it out only once that succeeded, so no query ever runs on it with the owner's rights. Its
// socket writes what one drain of the microtask queue issues in one go (`CoalescedWrites`).
class AppRoleClient extends Pg.Client {
  override connect(): Promise<Pg.Client>
  override connect(callback: ((err: Error) => void) | ((err: null, c: Pg.Client) => void)): void
  override connect(callback?: (err: any, c: Pg.Client) => void): Promise<Pg.Client> | void {
    const connected = super.connect().then(async () => {
      coalesceWrites((this as unknown as { connection?: { stream?: unknown } }).connection?.stream)
      await this.query(`SET ROLE ${Tenancy.appRole}`)
      return this as Pg.Client
    })
    if (callback === undefined) return connected
    connected.then((c) => callback(null, c), (err) => callback(err, this))
  }
}

/**
 * Names of the statement texts run as prepared statements, shared by every connection of the
 * process (a name always stands for the same text; each connection prepares it on first use).
 * The runtime's statements are a fixed set, but a bulk insert's text varies with its row
 * count: past `MAX_NAMED` texts, or for a text over `MAX_NAMED_TEXT`, a query runs unnamed.
 *
 * Why: `@effect/sql-pg` sends every query unnamed, so Postgres parses, analyses and plans it
 * on every call; a contact's context is one large statement, and Postgres' CPU was a third
 * of the machine's per contact. Measured on 2 cores (`bench/profile.ts`, 3,000-contact
 * campaigns, runs interleaved): 176–178 → 222–224 contacts/s, machine CPU per contact
 * 10 → 8 ms. Row-level security is unchanged: the tenant is read with `current_setting` when
 * a statement executes, and every connection acts as the application role.
 */
const MAX_NAMED = 1_000
// a batch of 16 context reads is about 72 KB of text (`ContactContext`); unnamed, Postgres
// parsed and planned it at every call: 220-230 against 265-272 contacts/s (`bench/profile.ts`)
const MAX_NAMED_TEXT = 256 * 1024
const statementNames = new Map<string, string>()
const nameOf = (text: string): string | undefined => {
  const known = statementNames.get(text)
  if (known !== undefined || statementNames.size >= MAX_NAMED || text.length > MAX_NAMED_TEXT) return known
  const name = `nexus_${statementNames.size}`
  statementNames.set(text, name)
  return name
}

// `AppRoleClient` running queries with parameters as named prepared statements
class PreparingClient extends AppRoleClient {
  override query(...args: Array<any>): any {
    const [text, values, callback] = args
    const name = typeof text === "string" && Array.isArray(values) && values.length > 0 ? nameOf(text) : undefined
    if (name === undefined) return (Pg.Client.prototype.query as (...a: Array<any>) => any).apply(this, args)
    return (Pg.Client.prototype.query as (...a: Array<any>) => any).call(this, { name, text, values }, callback)
  }
}

const appPool = (config: Pg.PoolConfig, operation: string, prepare: boolean): Layer.Layer<Database, StorageError> =>
  PgClient.layerFromPool({
    acquire: Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          // pipelining: a tenant scope's BEGIN and settings go out with its first query (see `Tenancy`);
          // it rules out cursors (`sql.stream`), which nothing here uses
          const Client = prepare ? PreparingClient : AppRoleClient
          const pool = new Pg.Pool({ ...config, pipeline: true, Client: Client as unknown as new () => Pg.ClientBase })
          pool.on("error", () => {})
          try {
            const { rows } = await pool.query<{ role: string }>("SELECT current_user AS role")
            if (rows[0]?.role !== Tenancy.appRole) throw new Error(`connections act as ${rows[0]?.role}, not ${Tenancy.appRole}`)
          } catch (cause) {
            await pool.end().catch(() => {})
            throw cause
          }
          return pool
        },
        catch: (cause) => new SqlError({ cause, message: `${operation}: ${cause instanceof Error ? cause.message : String(cause)}` })
      }),
      (pool) => Effect.promise(() => pool.end().catch(() => {}))
    ),
    applicationName: config.application_name
  }).pipe(Layer.mapError(connectError(operation)))

/**
 * A pool to the Postgres server at `url`, schema migrated (as the URL's user, which owns the
 * schema); the pool's connections act as the application role. Closed on release.
 */
export const layerUrl = (url: string | Redacted.Redacted, options: UrlOptions = {}): Layer.Layer<Database, StorageError> => {
  const secret = typeof url === "string" ? Redacted.make(url) : url
  const applicationName = options.applicationName ?? "nexus"
  const owner = PgClient.layer({ url: secret, maxConnections: 1, applicationName: `${applicationName}-migrate` }).pipe(
    Layer.mapError(connectError("Database.connect"))
  )
  return Layer.unwrapScoped(
    Effect.as(
      migrateWith(owner),
      appPool(
        { connectionString: Redacted.value(secret), max: options.maxConnections ?? 10, application_name: applicationName },
        "Database.connect",
        options.prepare ?? true
      )
    )
  )
}

/**
 * An embedded PGlite in `dir` (created if missing; `memory://` keeps nothing), served on
 * 127.0.0.1 at a port the OS picks, schema migrated; queries act as the application role.
 * The pool holds one connection: PGlite is a single backend and queries from several
 * connections would interleave on it.
 */
export const layerEmbedded = (dir: string, options: Pick<UrlOptions, "prepare"> = {}): Layer.Layer<Database, StorageError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const { host, port } = yield* Embedded.serve(dir)
      const server = { host, port, user: "postgres", database: "postgres" }
      yield* migrateWith(
        PgClient.layer({ ...server, username: server.user, maxConnections: 1, applicationName: "nexus-embedded-migrate" }).pipe(
          Layer.mapError(connectError("Database.connect.embedded"))
        )
      )
      // keep the one connection (idle timeout 0 = never): closing and reopening it gains nothing here
      return appPool({ ...server, max: 1, idleTimeoutMillis: 0, application_name: "nexus-embedded" }, "Database.connect.embedded", options.prepare ?? true)
    })
  )

/** The store the settings name: `layerUrl` when a URL is given, else `layerEmbedded(<dataDir>/pglite)`. */
export const layerFrom = (settings: DatabaseSettings): Layer.Layer<Database, StorageError> =>
  Option.match(settings.url, {
    onSome: (url) => layerUrl(url, { prepare: settings.prepare }),
    onNone: () => layerEmbedded(embeddedDir(settings.dataDir), { prepare: settings.prepare })
  })

/** The store configured by the environment (`DATABASE_URL`, `NEXUS_DATA_DIR`). */
export const layer: Layer.Layer<Database, StorageError | ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, layerFrom)
)
