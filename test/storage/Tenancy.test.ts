/**
 * Row-level security on a real Postgres server (the PGlite run of the same contract is in
 * `Embedded.test.ts`), and what a tenant scope costs in round trips.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import * as AuditLog from "../../storage/AuditLog.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"
import * as RoundTrips from "../fixtures/RoundTrips.js"
import { tenancyContract } from "./contracts/TenancyContract.js"

layer(Layer.mergeAll(ContactRepo.layer, AuditLog.layer).pipe(Layer.provideMerge(Postgres.layerFresh)), { excludeTestServices: true })(
  "Tenancy: row-level security (Postgres server)",
  (it) => tenancyContract(it)
)

/** A campaign row of `owner` (another tenant's, to test row-level security), by id. */
const insertCampaign = (sql: SqlClient.SqlClient) => (owner: string, id: string) =>
  sql<{ id: string }>`INSERT INTO campaigns (tenant_id, id, name, goal, spec, status) VALUES (${owner}, ${id}, 'n', 'g', 'null'::jsonb, 'running') RETURNING id`

describe("Tenancy: round trips (Postgres server)", () => {
  it.live("a tenant scope costs one round trip beyond its own queries (BEGIN and settings travel with the first)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const url = new URL(db.url)
        const counter = yield* RoundTrips.proxy({ host: url.hostname, port: Number(url.port || 5432) })
        url.port = String(counter.port)
        const env = yield* Layer.build(Database.layerUrl(url.toString(), { maxConnections: 1 }))
        const sql = Context.get(env, SqlClient.SqlClient)
        const tenant = TenantId.make("round-trips")
        const trips = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const before = counter.count()
            yield* effect
            return counter.count() - before
          })
        const queries = (n: number) => Effect.forEach(Array.from({ length: n }), () => sql`SELECT 1`, { discard: true })
        yield* Tenancy.within(sql, tenant)(queries(1)) // the pool's connection is open from here on

        expect(yield* trips(Effect.repeatN(queries(1), 4)), "unscoped: one per query").toBe(5)
        expect(yield* trips(Effect.repeatN(Tenancy.within(sql, tenant)(queries(1)), 4)), "one query per scope, + COMMIT").toBe(10)
        expect(yield* trips(Effect.repeatN(Tenancy.within(sql, tenant)(queries(3)), 4)), "three queries per scope, + COMMIT").toBe(20)
        expect(yield* trips(Effect.repeatN(Tenancy.read(sql, tenant)(sql`SELECT 1`), 4)), "a read: opening, query and COMMIT at once").toBe(5)
        const insert = insertCampaign(sql)
        expect(yield* trips(Effect.repeatN(Effect.suspend(() => Tenancy.write(sql, tenant)(insert(tenant, `w-${Math.random()}`))), 3)), "a write: opening, statement and COMMIT at once").toBe(4)
        const failing = Tenancy.within(sql, tenant)(Effect.zipRight(queries(1), Effect.fail("no")))
        expect(yield* trips(Effect.ignore(failing)), "a failing scope, + ROLLBACK").toBe(2)
        // and the settings still hold for the scope's first query, and not after it
        expect(yield* Tenancy.within(sql, tenant)(sql<{ t: string }>`SELECT current_setting('app.tenant_id') AS t`)).toEqual([{ t: tenant }])
        expect(yield* sql<{ t: string | null }>`SELECT nullif(current_setting('app.tenant_id', true), '') AS t`).toEqual([{ t: null }])
      })
    ))
})

describe("Tenancy.write (Postgres server)", () => {
  it.live("a failed write leaves nothing and a clean connection; another tenant's row is refused; a good one is kept", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const env = yield* Layer.build(Database.layerUrl(db.url, { maxConnections: 1 }))
        const sql = Context.get(env, SqlClient.SqlClient)
        const [a, b] = [TenantId.make("write-a"), TenantId.make("write-b")]
        const insert = insertCampaign(sql)
        const ids = (tenant: TenantId) => Tenancy.read(sql, tenant)(sql<{ id: string }>`SELECT id FROM campaigns ORDER BY id`)

        expect(yield* Tenancy.write(sql, a)(insert(a, "c1"))).toEqual([{ id: "c1" }])
        // the same key again: a unique violation, rolled back by the COMMIT sent behind it
        const duplicate = yield* Effect.flip(Tenancy.write(sql, a)(insert(a, "c1")))
        expect(duplicate._tag).toBe("SqlError")
        // a row of another tenant: refused by row-level security
        const foreign = yield* Effect.flip(Tenancy.write(sql, a)(insert(b, "c2")))
        expect(String((foreign.cause as { code?: string }).code)).toBe("42501")
        // the one connection is not left in an aborted transaction: the next write and reads work
        expect(yield* Tenancy.write(sql, a)(insert(a, "c3"))).toEqual([{ id: "c3" }])
        expect(yield* ids(a)).toEqual([{ id: "c1" }, { id: "c3" }])
        expect(yield* ids(b)).toEqual([])
        // inside a scope it joins the scope's transaction (rolled back with it)
        yield* Effect.ignore(Tenancy.within(sql, a)(Effect.zipRight(Tenancy.write(sql, a)(insert(a, "c4")), Effect.fail("abort"))))
        expect(yield* ids(a)).toEqual([{ id: "c1" }, { id: "c3" }])
      })
    ))
})

describe("Tenancy: prepared statements (Postgres server)", () => {
  const prepared = (sql: SqlClient.SqlClient) =>
    sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements ORDER BY name`

  it.live("queries with parameters are prepared once per connection, and row-level security still holds for each tenant", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const env = yield* Layer.build(Layer.provideMerge(ContactRepo.layer, Database.layerUrl(db.url, { maxConnections: 1 })))
        const sql = Context.get(env, SqlClient.SqlClient)
        const repo = Context.get(env, ContactRepo.ContactRepo)
        const [a, b] = [TenantId.make("prep-a"), TenantId.make("prep-b")]
        yield* repo.insertMany(a, DemoData.contacts(a, 3, 1))
        yield* repo.insertMany(b, DemoData.contacts(b, 5, 2))
        // the same statement, many times, alternating tenants on the one connection
        for (let i = 0; i < 6; i++) {
          expect(yield* repo.count(a, {})).toBe(3)
          expect(yield* repo.count(b, {})).toBe(5)
          const mine = new Set(DemoData.contacts(a, 3, 1).map((c) => c.id))
          expect((yield* repo.window(a, {}, null, 10)).contacts.map((c) => c.id).sort()).toEqual([...mine].sort())
        }
        const names = (yield* prepared(sql)).filter((p) => p.name.startsWith("nexus_"))
        const counts = names.filter((p) => p.statement.includes("count(*)"))
        expect(counts.length, "the count statement is prepared once on the connection").toBe(1)
        expect(names.length).toBeGreaterThanOrEqual(3)
      })
    ))

  it.live("with prepare off nothing is prepared", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const env = yield* Layer.build(Layer.provideMerge(ContactRepo.layer, Database.layerUrl(db.url, { maxConnections: 1, prepare: false })))
        const sql = Context.get(env, SqlClient.SqlClient)
        const repo = Context.get(env, ContactRepo.ContactRepo)
        for (let i = 0; i < 3; i++) expect(yield* repo.count(TenantId.make("unprepared"), {})).toBe(0)
        expect(yield* prepared(sql)).toEqual([])
      })
    ))
})
