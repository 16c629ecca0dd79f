/**
 * Database layers: the embedded PGlite (served through pglite-socket to the pg driver)
 * migrates, answers the repositories and keeps its data across two builds on one directory;
 * the config-selected layer picks Postgres when `DATABASE_URL` is set; a server that is not
 * there fails with a retryable `StorageError`.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CampaignId, ContactId, TenantId } from "../../protocols/Ids.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as DeliveryLedger from "../../storage/DeliveryLedger.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Errors from "../../storage/Errors.js"
import * as Migrations from "../../storage/internal/Migrations.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

const tenant = TenantId.make("acme")
const migrationIds = Object.keys(Migrations.all).map((key) => Number(key.slice(0, 4)))

const withRepos = <E>(database: Layer.Layer<Database.Database, E>) =>
  Layer.mergeAll(ContactRepo.layer, DeliveryLedger.layer).pipe(Layer.provideMerge(database))

const fromEnv = (env: Record<string, string>) =>
  Database.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))

/** Every contact of the tenant, read window by window. */
const readAll = (limit: number) =>
  Effect.gen(function* () {
    const repo = yield* ContactRepo.ContactRepo
    const ids: Array<string> = []
    let after: ContactRepo.Cursor | null = null
    do {
      const w: ContactRepo.Window = yield* repo.window(tenant, {}, after, limit)
      ids.push(...w.contacts.map((c) => c.id))
      after = w.next
    } while (after !== null)
    return ids
  })

const delivery = (key: string, body: string): DeliveryLedger.NewDelivery => ({
  tenantId: tenant,
  idempotencyKey: key,
  campaignId: CampaignId.make("cmp-1"),
  contactId: ContactId.make("ct-000001"),
  channel: "email",
  recipient: "ava@example.example",
  subject: "Hello",
  body,
  outcome: "sent",
  detail: "sandbox",
  durationSec: 0,
  transcript: null
})

describe("Database (embedded PGlite)", () => {
  it.live("migrates, serves the repositories, and keeps data across two builds on one directory", () =>
    Effect.gen(function* () {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "nexus-db-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const contacts = DemoData.contacts(tenant, 250, 11)

      // First build: selected by the environment (no DATABASE_URL → <NEXUS_DATA_DIR>/pglite)
      const firstIds = yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        // the migration table is the owner's: read it with the owner's rights
        const migrations = yield* sql.withTransaction(
          Effect.zipRight(sql`SET LOCAL ROLE NONE`, sql<{ migration_id: number }>`SELECT migration_id FROM nexus_migrations ORDER BY 1`)
        )
        expect(migrations.map((m) => m.migration_id)).toEqual(migrationIds)
        expect(yield* Database.migrate).toEqual([]) // nothing pending after the build

        const repo = yield* ContactRepo.ContactRepo
        expect(yield* repo.insertMany(tenant, contacts)).toBe(250)
        expect(yield* repo.count(tenant, { segments: ["enterprise"] })).toBe(
          contacts.filter((c) => c.segment === "enterprise").length
        )
        const ids = yield* readAll(17)
        expect(ids.length).toBe(250)
        expect(new Set(ids).size).toBe(250)

        const ledger = yield* DeliveryLedger.DeliveryLedger
        expect((yield* ledger.record(delivery("k-1", "first"))).duplicate).toBe(false)
        return ids
      }).pipe(Effect.provide(withRepos(fromEnv({ NEXUS_DATA_DIR: dataDir }))))

      expect(existsSync(join(dataDir, "pglite", "PG_VERSION"))).toBe(true)

      // Second build on the same directory: the data and the migration record survived
      yield* Effect.gen(function* () {
        expect(yield* Database.migrate).toEqual([])
        const repo = yield* ContactRepo.ContactRepo
        expect(yield* repo.count(tenant, {})).toBe(250)
        expect(yield* readAll(100)).toEqual(firstIds)
        expect(yield* repo.get(tenant, contacts[9]!.id)).toEqual(Option.some(contacts[9]!))
        const again = yield* (yield* DeliveryLedger.DeliveryLedger).record(delivery("k-1", "second"))
        expect(again.duplicate).toBe(true)
        expect(again.entry.body).toBe("first")
      }).pipe(Effect.provide(withRepos(Database.layerEmbedded(Database.embeddedDir(dataDir)))))
    }).pipe(Effect.scoped))

  it.live("memory:// runs without a directory and serves concurrent queries through one connection", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      yield* repo.insertMany(tenant, DemoData.contacts(tenant, 40, 2))
      // many fibers at once: the single pooled connection serialises them
      const counts = yield* Effect.all(
        Array.from({ length: 30 }, (_, i) => repo.count(tenant, { minLeadScore: i })),
        { concurrency: "unbounded" }
      )
      expect(counts[0]).toBe(40)
      expect(counts.every((n, i) => i === 0 || n <= counts[i - 1]!)).toBe(true)
      const sql = yield* SqlClient.SqlClient
      const failed = yield* sql`SELECT * FROM no_such_table`.pipe(Effect.flip)
      expect(failed._tag).toBe("SqlError")
      expect((yield* sql<{ one: number }>`SELECT 1 AS one`)[0]?.one).toBe(1) // the connection survived
    }).pipe(Effect.provide(withRepos(Database.layerEmbedded(Database.memory)))))
})

describe("Database (Postgres)", () => {
  it.live("DATABASE_URL selects the Postgres server and migrates it", () =>
    Effect.gen(function* () {
      const fresh = yield* Postgres.freshDatabase
      yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ db: string }>`SELECT current_database() AS db`
        expect(row?.db).toBe(fresh.name)
        const tables = yield* sql<{ name: string }>`
          SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`
        expect(tables.map((t) => t.name)).toEqual(
          expect.arrayContaining(["audit_log", "campaigns", "contacts", "deliveries", "episodes", "graph_edges", "nexus_migrations"])
        )
        // the application's connections act as the restricted role, which cannot see the migrations
        const [who] = yield* sql<{ role: string }>`SELECT current_user AS role`
        expect(who?.role).toBe(Tenancy.appRole)
        expect((yield* sql`SELECT * FROM nexus_migrations`.pipe(Effect.flip))._tag).toBe("SqlError")
      }).pipe(Effect.provide(fromEnv({ DATABASE_URL: fresh.url, NEXUS_DATA_DIR: "/nonexistent" })))
    }).pipe(Effect.scoped))

  it.live("a server that is not there fails with a retryable StorageError", () =>
    Effect.gen(function* () {
      const error = yield* Layer.build(Database.layerUrl("postgres://postgres@127.0.0.1:1/postgres")).pipe(
        Effect.scoped,
        Effect.flip
      )
      expect(error._tag).toBe("StorageError")
      expect(error.reason).toBe("Unavailable")
      expect(error.retryable).toBe(true)
    }))

  it.live("a database that refuses connections fails with a retryable StorageError, whatever the server's code", () =>
    Effect.gen(function* () {
      const fresh = yield* Postgres.freshDatabase
      yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const admin = (statement: string) =>
          Effect.gen(function* () {
            const a = yield* SqlClient.SqlClient
            yield* a.unsafe(statement)
          }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(Postgres.adminUrl), maxConnections: 1 })), Effect.orDie)
        // its connections cut and new ones refused (SQLSTATE 55000, not a connection class)
        yield* admin(`ALTER DATABASE ${fresh.name} WITH ALLOW_CONNECTIONS false`)
        yield* admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${fresh.name}'`)
        // let the pool drop its dead connections: the probe must ask for a new one
        yield* Effect.sleep("300 millis")
        const error = yield* sql`SELECT 1`.pipe(Effect.mapError(Errors.refine("probe")), Effect.flip)
        yield* admin(`ALTER DATABASE ${fresh.name} WITH ALLOW_CONNECTIONS true`)
        expect(error).toMatchObject({ _tag: "StorageError", reason: "Unavailable", retryable: true })
        // and back
        expect(yield* sql<{ one: number }>`SELECT 1 AS one`).toEqual([{ one: 1 }])
      }).pipe(Effect.provide(Database.layerUrl(fresh.url)))
    }).pipe(Effect.scoped))
})
