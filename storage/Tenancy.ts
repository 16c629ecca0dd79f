/**
 * Tenant isolation in Postgres. Every row of a tenant table is guarded by a row-level
 * security policy (`tenant_id = current_setting('app.tenant_id')`, forced even for the table
 * owner), and application queries run as `nexus_app`, a role that is neither superuser nor
 * `BYPASSRLS`:
 *
 * - each pooled connection switches to that role as soon as it opens (see `Database`), so a
 *   query run outside any tenant scope sees no tenant rows at all;
 * - `withTenant(tenant)` runs an effect in one transaction that sets the role, the tenant and
 *   the acting principal with `set_config(..., is_local => true)`: a query in it that forgets
 *   its `WHERE tenant_id = …` still sees only that tenant, and a write of another tenant's
 *   row is refused (SQLSTATE 42501).
 *
 * A scope costs one round trip beyond its own queries: `BEGIN` and the settings go as one
 * message that is written to the connection without waiting for its answer, so on a
 * pipelining connection (the application pool of `Database`; on another one, the first
 * query waits behind it) it travels with the scope's first query; only `COMMIT` (or
 * `ROLLBACK`) is waited for. The answer is checked before the commit, and a query sent
 * behind a failed opening runs in an aborted transaction (it fails) or outside any tenant
 * (it sees nothing), never with another tenant's rights. A single statement costs one round
 * trip in all, its `COMMIT` sent behind it without waiting: a read (`read`, in a `READ ONLY`
 * transaction) or a write (`write`: a failed statement is rolled back by that `COMMIT`).
 *
 * The principal, the agent it acts through and the trace id are kept in a `FiberRef`
 * (`withActor`) and written into every audit-log row by the audit trigger.
 *
 * The boundary this draws is against mistakes in application code (a forgotten filter, a
 * forgotten scope), not against code that issues `RESET ROLE`: a session may always return
 * to the user it logged in as. In production, log in as a non-superuser schema owner (or a
 * dedicated login that is a member of `nexus_app`): because the policies are forced, even
 * that owner sees only the tenant in `app.tenant_id`. Only superusers and `BYPASSRLS` roles
 * are exempt, which is why tests and the embedded PGlite (both logged in as superuser)
 * prove isolation through `nexus_app`.
 */
import { SqlClient, type Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Fiber, FiberRef, Option, Runtime } from "effect"
import type { TenantId } from "../protocols/Ids.js"

/** The role application queries act as (created by migration 0004). */
export const appRole = "nexus_app"

/** Who makes a change: recorded in the audit log for every write. */
export interface Actor {
  /** The principal, e.g. `user:alice`, `system:ingest`. */
  readonly principal: string
  /** The agent acting for the principal (`ingest`, `planner`), or null when the principal acts directly. */
  readonly viaAgent: string | null
  /** The trace id (W3C, 32 hex digits) of the work that made the change, when there is one. */
  readonly traceId: string | null
}

/** The actor of changes made outside any `withActor`: `system`. */
export const system: Actor = { principal: "system", viaAgent: null, traceId: null }

/** The actor of the current fiber. */
export const currentActor: FiberRef.FiberRef<Actor> = FiberRef.unsafeMake<Actor>(system)

/** The tenant whose transaction the current fiber runs in, if any. */
export const currentTenant: FiberRef.FiberRef<Option.Option<TenantId>> = FiberRef.unsafeMake<Option.Option<TenantId>>(
  Option.none()
)

/** Runs `effect` with `actor` as the author of its changes. */
export const withActor =
  (actor: Actor) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.locally(effect, currentActor, actor)

/** An actor for an agent acting for a principal, from a W3C `traceparent` (its trace id is kept). */
export const agentActor = (principal: string, agent: string, traceparent: string | null): Actor => ({
  principal,
  viaAgent: agent,
  traceId: traceparent === null ? null : (traceparent.split("-")[1] ?? null)
})

// A string literal, escaped as the pg driver's `escapeLiteral` does: quotes doubled, and with
// a backslash an E'' literal with backslashes doubled (right whatever standard_conforming_strings).
const literal = (s: string): string => {
  const body = s.replace(/'/g, "''")
  return s.includes("\\") ? ` E'${body.replace(/\\/g, "\\\\")}'` : `'${body}'`
}

// The settings of a scope as one statement. Literals, not parameters: a statement without
// parameters goes as a simple query, which may carry `BEGIN` in the same message.
const settingsOf = (tenant: TenantId, actor: Actor): string =>
  `SELECT set_config('role', ${literal(appRole)}, true), set_config('app.tenant_id', ${literal(tenant)}, true), ` +
  `set_config('app.actor', ${literal(actor.principal)}, true), set_config('app.via_agent', ${literal(actor.viaAgent ?? "")}, true), ` +
  `set_config('app.trace_id', ${literal(actor.traceId ?? "")}, true)`

// One transaction on a reserved connection, as `sql.withTransaction` but with `BEGIN` and the
// settings sent ahead in one message (see the module header). `Runtime.runFork` starts a
// fiber synchronously up to its first asynchronous step, which is the driver call: the
// message is queued on the connection before the effect's first query.
const transaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  settings: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* sql.reserve
        const opening = Runtime.runFork(yield* Effect.runtime<never>())(conn.executeUnprepared(`BEGIN; ${settings}`, [], undefined))
        const exit = yield* Effect.exit(restore(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0] as const)))
        const opened = yield* Fiber.await(opening)
        if (Exit.isSuccess(opened) && Exit.isSuccess(exit)) {
          yield* conn.executeUnprepared("COMMIT", [], undefined)
          return exit.value
        }
        yield* Effect.orDie(conn.executeUnprepared("ROLLBACK", [], undefined))
        // a failed opening explains whatever the effect's queries reported after it
        return yield* (Exit.isFailure(opened) ? Exit.asVoid(opened) : exit) as Exit.Exit<A, E | SqlError>
      })
    )
  ).pipe(Effect.withSpan("sql.transaction", { kind: "client" }))

// One statement on a reserved connection: the opening, the statement and `COMMIT` are each
// queued on the connection before the next is sent (`Runtime.runFork` starts a fiber
// synchronously up to its driver call, as above), so they travel together and cost one round
// trip. Once sent, the three are waited for.
// - Read only: a transaction that cannot write loses nothing by committing whatever happened
//   in it: a failed opening leaves the statement failing in an aborted transaction (or seeing
//   no tenant's rows), and the commit then rolls back.
// - A write: a failed statement aborts the transaction, and the `COMMIT` behind it rolls it
//   back (Postgres answers it without an error), so nothing of it stays and the connection
//   is clean for the next user. The opening fails only as a whole, before `BEGIN` ran or
//   after (its settings are literals of a fixed form): after, the statement fails in the
//   aborted transaction; before, it runs outside any tenant scope, where row-level security
//   lets no row of any tenant be written (the settings it checks are unset). Either way the
//   opening's failure is the result.
const oneStatement = <A extends object>(
  sql: SqlClient.SqlClient,
  begin: "BEGIN" | "BEGIN READ ONLY",
  settings: string,
  statement: Statement.Statement<A>
): Effect.Effect<ReadonlyArray<A>, SqlError> =>
  Effect.uninterruptible(
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* sql.reserve
        const [text, params] = statement.compile()
        const send = Runtime.runFork(yield* Effect.runtime<never>())
        const opening = send(conn.executeUnprepared(`${begin}; ${settings}`, [], undefined))
        const reading = send(conn.execute(text, params, undefined))
        // answered after the statement: once it is, so are the two before it
        const closed = yield* Effect.exit(conn.executeUnprepared("COMMIT", [], undefined))
        const opened = yield* Fiber.await(opening)
        const read = yield* Fiber.await(reading)
        // a failed opening explains whatever the statement reported after it
        if (Exit.isFailure(opened)) return yield* Effect.failCause(opened.cause)
        if (Exit.isFailure(closed) && Exit.isSuccess(read)) return yield* Effect.failCause(closed.cause)
        return (yield* read) as ReadonlyArray<A>
      })
    )
  )

/**
 * Runs `effect` on `sql` in one transaction scoped to `tenant`: as the application role, with
 * the tenant and actor set for row-level security and the audit trigger. Inside a scope of
 * the same tenant it joins that transaction; inside another tenant's scope it dies (a bug);
 * inside a transaction opened without a tenant it runs in a savepoint of it.
 */
export const within =
  (sql: SqlClient.SqlClient, tenant: TenantId) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    Effect.gen(function* () {
      const open = yield* FiberRef.get(currentTenant)
      if (Option.isSome(open)) {
        if (open.value === tenant) return yield* effect
        return yield* Effect.dieMessage(`tenant scope ${tenant} opened inside the scope of tenant ${open.value}`)
      }
      const settings = settingsOf(tenant, yield* FiberRef.get(currentActor))
      const scoped = Effect.locally(effect, currentTenant, Option.some(tenant))
      // inside a transaction opened without a tenant: a savepoint of it
      if (Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))) {
        return yield* sql.withTransaction(Effect.zipRight(sql.unsafe(settings), scoped))
      }
      return yield* transaction(sql, settings, scoped)
    })

/**
 * Whether the current fiber runs inside a tenant scope or a transaction: there, a statement
 * joins what is open (as `within` does) instead of opening a transaction of its own.
 */
export const inScope: Effect.Effect<boolean> = Effect.zipWith(
  FiberRef.get(currentTenant),
  Effect.serviceOption(SqlClient.TransactionConnection),
  (tenant, tx) => Option.isSome(tenant) || Option.isSome(tx)
)

// One statement in a scope of `tenant`: in a transaction of its own, in one round trip
// (`oneStatement`); inside a scope (or any transaction), there, as `within` runs it.
const singleStatement =
  (begin: "BEGIN" | "BEGIN READ ONLY") =>
  (sql: SqlClient.SqlClient, tenant: TenantId, options?: StatementOptions) =>
  <A extends object>(statement: Statement.Statement<A>): Effect.Effect<ReadonlyArray<A>, SqlError> =>
    Effect.gen(function* () {
      if (yield* inScope) return yield* within(sql, tenant)(statement)
      const settings = settingsOf(tenant, yield* FiberRef.get(currentActor))
      return yield* oneStatement(sql, begin, options?.genericPlan ? `${settings}, ${genericPlan}` : settings, statement)
    })

/** Options of a single read in a transaction of its own (`read`). */
export interface StatementOptions {
  /**
   * Plan the statement once per connection, not at every run: `plan_cache_mode` is set to
   * `force_generic_plan` for its transaction. Meant for a large statement whose planning
   * costs more than its execution (the context reads of a batch of assemblies: seven reads
   * with CTEs of their own, run for each row), run as a named prepared statement
   * (`Database`'s default; an unnamed one is planned at every run regardless). PostgreSQL's
   * own choice (`auto`) plans the first five runs of each text on each connection for their
   * parameters, and may keep doing so.
   * Inside a caller's scope the statement is planned as the scope's others are.
   */
  readonly genericPlan?: boolean
}

const genericPlan = "set_config('plan_cache_mode', 'force_generic_plan', true)"

/**
 * Runs one read-only statement on `sql` in a scope of `tenant`, as `within` would, but in one
 * round trip: a transaction of its own, `READ ONLY`, opened, read and committed at once. Inside
 * a scope (or any transaction) it runs there, as `within` does.
 */
export const read: (
  sql: SqlClient.SqlClient,
  tenant: TenantId,
  options?: StatementOptions
) => <A extends object>(statement: Statement.Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError> = singleStatement("BEGIN READ ONLY")

/**
 * Runs one statement that writes (an `INSERT … RETURNING`, say) on `sql` in a scope of
 * `tenant`, as `within` would, but in one round trip: a transaction of its own, opened, run
 * and committed at once; if the statement fails, nothing of it stays. Inside a scope (or any
 * transaction) it runs there, as `within` does.
 */
export const write: (
  sql: SqlClient.SqlClient,
  tenant: TenantId
) => <A extends object>(statement: Statement.Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError> = singleStatement("BEGIN")

/** `within` on the `SqlClient` of the context. */
export const withTenant =
  (tenant: TenantId) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => within(sql, tenant)(effect))
