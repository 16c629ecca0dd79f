/**
 * Row-level security, as the application sees it, on any database layer (a Postgres server
 * or the embedded PGlite, both connected as a superuser that the pool turns into the
 * restricted application role): queries that forget the tenant filter, or the tenant scope
 * altogether, still see one tenant or none; writes into another tenant are refused; the
 * audit log records the acting principal.
 */
import { SqlClient } from "@effect/sql"
import { expect, type Vitest } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { randomBytes } from "node:crypto"
import { TenantId } from "../../../protocols/Ids.js"
import { AuditLog } from "../../../storage/AuditLog.js"
import { ContactRepo } from "../../../storage/ContactRepo.js"
import * as DemoData from "../../../storage/DemoData.js"
import * as Errors from "../../../storage/Errors.js"
import * as Tenancy from "../../../storage/Tenancy.js"

const fresh = (tag: string) => TenantId.make(`${tag}-${randomBytes(4).toString("hex")}`)

/**
 * Two fresh tenants with `na` and `nb` demo contacts, and a count per tenant that forgets the
 * tenant filter (no `WHERE tenant_id` at all): row-level security alone decides what it sees.
 */
const twoTenants = (tag: string, na: number, nb: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const repo = yield* ContactRepo
    const [a, b] = [fresh(`${tag}-a`), fresh(`${tag}-b`)]
    yield* repo.insertMany(a, DemoData.contacts(a, na, 1))
    yield* repo.insertMany(b, DemoData.contacts(b, nb, 2))
    const forgetful = sql<{ tenant_id: string; n: number }>`SELECT tenant_id, count(*)::int AS n FROM contacts GROUP BY tenant_id`
    return { a, b, forgetful }
  })

/** Registers the contract's tests on `it` (environment: a database, `ContactRepo`, `AuditLog`). */
export const tenancyContract = (it: Vitest.MethodsNonLive<SqlClient.SqlClient | ContactRepo | AuditLog, true>) => {
  it.effect("a query that forgets the tenant filter sees only the scoped tenant, or nothing without a scope", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* ContactRepo
      const { a, b, forgetful } = yield* twoTenants("rls", 30, 20)

      // no WHERE tenant_id at all
      expect(yield* Tenancy.withTenant(a)(forgetful)).toEqual([{ tenant_id: a, n: 30 }])
      expect(yield* Tenancy.withTenant(b)(forgetful)).toEqual([{ tenant_id: b, n: 20 }])
      // outside any tenant scope the application role sees no tenant rows at all
      expect(yield* forgetful).toEqual([])
      const [role] = yield* sql<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>`
        SELECT rolname AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`
      expect(role).toEqual({ name: Tenancy.appRole, rolsuper: false, rolbypassrls: false })

      // an unfiltered update or delete touches only the scoped tenant
      const touched = yield* Tenancy.withTenant(a)(sql`UPDATE contacts SET title = title || '' RETURNING tenant_id`)
      expect(touched.length).toBe(30)
      expect(yield* Tenancy.withTenant(a)(sql`DELETE FROM contacts WHERE tenant_id = ${b} RETURNING id`)).toEqual([])
      expect(yield* repo.count(b, {})).toBe(20)
    }))

  it.effect("a write into another tenant is refused as Forbidden and rolls back the whole scope", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const repo = yield* ContactRepo
      const [a, b] = [fresh("rls-w-a"), fresh("rls-w-b")]
      yield* repo.insertMany(a, DemoData.contacts(a, 3, 1))
      const smuggle = Tenancy.withTenant(a)(
        Effect.zipRight(
          sql`UPDATE contacts SET name = 'changed' WHERE tenant_id = ${a}`,
          sql`INSERT INTO contacts (tenant_id, id, name, company, title, industry, segment, region, timezone, lead_score)
              VALUES (${b}, 'ct-x', 'Mallory', 'Evil', 'CEO', 'SaaS', 'smb', 'Europe', 'Europe/Berlin', 50)`
        )
      )
      const error = yield* smuggle.pipe(Effect.mapError(Errors.refine("smuggle")), Effect.flip)
      expect(error.reason).toBe("Forbidden")
      expect(error.retryable).toBe(false)
      expect(yield* repo.count(b, {})).toBe(0)
      // the update before it was rolled back with it
      const names = yield* Tenancy.withTenant(a)(sql<{ name: string }>`SELECT name FROM contacts`)
      expect(names.some((n) => n.name === "changed")).toBe(false)
      // moving a row to another tenant is refused too
      const moved = yield* Tenancy.withTenant(a)(sql`UPDATE contacts SET tenant_id = ${b}`).pipe(
        Effect.mapError(Errors.refine("move")),
        Effect.flip
      )
      expect(moved.reason).toBe("Forbidden")
    }))

  it.effect("the audit log records who changed what, via which agent and trace, per tenant", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo
      const audit = yield* AuditLog
      const [a, b] = [fresh("audit-a"), fresh("audit-b")]
      const contacts = DemoData.contacts(a, 2, 3)
      const traceparent = `00-${"ab".repeat(16)}-${"cd".repeat(8)}-01`
      yield* repo.insertMany(a, contacts).pipe(Tenancy.withActor(Tenancy.agentActor("user:alice", "planner", traceparent)))
      yield* repo.insertMany(a, contacts) // the same again: no change, no audit row
      yield* repo.insertMany(a, [{ ...contacts[0]!, title: "Chief Everything Officer" }])

      const history = yield* audit.ofRow(a, "contacts", contacts[0]!.id)
      expect(history.map((h) => [h.op, h.actor, h.viaAgent])).toEqual([
        ["insert", "user:alice", "planner"],
        ["update", "system", null]
      ])
      expect(history[0]!.traceId).toBe("ab".repeat(16))
      expect(history[1]!.changes).toEqual({ title: { from: contacts[0]!.title, to: "Chief Everything Officer" } })
      expect((yield* audit.byTrace(a, "ab".repeat(16))).length).toBe(2)
      expect(yield* audit.ofRow(b, "contacts", contacts[0]!.id)).toEqual([])
    }))

  it.effect("the actor reaches the scope's settings exactly, whatever its characters", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = fresh("quote") // tenant ids are [A-Za-z0-9_-]; principals, agents and traces are free text
      const actor = { principal: "user:o'brien'); SELECT 1; --", viaAgent: "back\\slash\\'", traceId: "é\u00e9ü ' \\n" }
      const seen = yield* Tenancy.withTenant(tenant)(sql<{ tenant: string; actor: string; via: string; trace: string }>`
        SELECT current_setting('app.tenant_id') AS tenant, current_setting('app.actor') AS actor,
               current_setting('app.via_agent') AS via, current_setting('app.trace_id') AS trace`).pipe(Tenancy.withActor(actor))
      expect(seen).toEqual([{ tenant, actor: actor.principal, via: actor.viaAgent, trace: actor.traceId }])
    }))

  it.effect("a read sees only its tenant, cannot write, leaves the connection clean, and joins an open scope", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const { a, b, forgetful } = yield* twoTenants("read", 4, 2)
      expect(yield* Tenancy.read(sql, a)(forgetful)).toEqual([{ tenant_id: a, n: 4 }])
      expect(yield* Tenancy.read(sql, b)(forgetful)).toEqual([{ tenant_id: b, n: 2 }])

      // read only: a write fails (SQLSTATE 25006) and changes nothing
      const write = yield* Effect.flip(Tenancy.read(sql, a)(sql`UPDATE contacts SET name = 'changed' RETURNING id`))
      expect(Errors.codeOf(write)).toBe("25006")
      const names = yield* Tenancy.withTenant(a)(sql<{ name: string }>`SELECT name FROM contacts`)
      expect(names.some((n) => n.name === "changed")).toBe(false)
      // a failed read leaves nothing behind: the next reads and queries run as usual
      expect(Errors.codeOf(yield* Effect.flip(Tenancy.read(sql, a)(sql`SELECT 1 / 0 AS x`)))).toBe("22012")
      expect(yield* Tenancy.read(sql, b)(forgetful)).toEqual([{ tenant_id: b, n: 2 }])
      expect(yield* forgetful).toEqual([])

      // inside a scope of its tenant it runs in that transaction (and sees its writes)
      const inScope = yield* Tenancy.withTenant(a)(
        Effect.zipRight(sql`UPDATE contacts SET title = 'Reader'`, Tenancy.read(sql, a)(sql<{ title: string }>`SELECT DISTINCT title FROM contacts`))
      )
      expect(inScope).toEqual([{ title: "Reader" }])
    }))

  it.effect("a tenant scope opened inside another tenant's scope is a defect", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const exit = yield* Effect.exit(Tenancy.withTenant(fresh("outer"))(Tenancy.withTenant(fresh("inner"))(sql`SELECT 1`)))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    }))
}
