/**
 * The action ledger of agents' CRM writes (a task created, an activity logged, a meeting
 * proposed), the same pattern as the attempt ledger of the channels: a row keyed by tenant
 * and a deterministic idempotency key (the planner step) is written *before* the action
 * runs and finished after; a re-run finds it and returns the recorded outcome without
 * writing anything again.
 *
 * Unlike a channel, the effect here is in the same database: `once` runs begin, the action's
 * writes and finish in one tenant transaction, so a crash leaves either everything or
 * nothing, and two nodes handling the same redelivered message at once are serialised by
 * the key (the second waits for the first to commit, then finds its row).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Decoder from "../protocols/Decoder.js"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** One recorded action. */
export interface ActionRecord {
  readonly tenantId: TenantId
  readonly idempotencyKey: string
  /** The agent that took it (`planner`). */
  readonly agent: string
  /** The action's name (`create_task`). */
  readonly action: string
  readonly input: unknown
  readonly status: "pending" | "done"
  /** What became of it (`executed`, `refused`), once done. */
  readonly outcome: string | null
  readonly result: unknown
  /** The trace of the work that took it (from the acting principal). */
  readonly traceId: string | null
  readonly createdAt: Date
}

/** What an action does when it runs: its outcome and a small JSON result. */
export interface ActionOutcome {
  readonly outcome: string
  readonly result: Record<string, unknown>
}

/** The result of `once`: the outcome, and whether it was recorded by an earlier run. */
export interface Once extends ActionOutcome {
  readonly duplicate: boolean
}

/** What identifies an action. */
export type ActionKey = Pick<ActionRecord, "idempotencyKey" | "agent" | "action" | "input">

/** The action ledger. */
export interface ActionLedgerShape {
  /**
   * Runs `run` at most once per (tenant, key): records the key, runs it and records its
   * outcome in one tenant transaction (with the acting principal of the fiber, so its
   * writes are audited as made through the agent); a key already recorded returns the
   * recorded outcome and runs nothing.
   */
  readonly once: <E, R>(
    tenant: TenantId,
    key: ActionKey,
    run: Effect.Effect<ActionOutcome, E, R>
  ) => Effect.Effect<Once, E | StorageError, R>
  readonly get: (tenant: TenantId, key: string) => Effect.Effect<Option.Option<ActionRecord>, StorageError>
  /** Every action of an agent whose key starts with `prefix`, oldest first. */
  readonly list: (tenant: TenantId, prefix: string) => Effect.Effect<ReadonlyArray<ActionRecord>, StorageError>
}

/** The action ledger service. */
export class ActionLedger extends Context.Tag("nexus/storage/ActionLedger")<ActionLedger, ActionLedgerShape>() {}

const Row = Schema.Struct({
  tenant_id: Schema.String,
  idempotency_key: Schema.String,
  agent: Schema.String,
  action: Schema.String,
  input: Schema.Unknown,
  status: Schema.Literal("pending", "done"),
  outcome: Schema.NullOr(Schema.String),
  result: Schema.Unknown,
  trace_id: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf
})
const decodeRows = Decoder.effect(Schema.Array(Row))
const toRecord = (r: typeof Row.Type): ActionRecord => ({
  tenantId: r.tenant_id as TenantId,
  idempotencyKey: r.idempotency_key,
  agent: r.agent,
  action: r.action,
  input: r.input,
  status: r.status,
  outcome: r.outcome,
  result: r.result,
  traceId: r.trace_id,
  createdAt: r.created_at
})

const isOwn = (e: unknown) => {
  const tag = (e as { _tag?: unknown } | null)?._tag
  return tag === "SqlError" || tag === "ParseError"
}

const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** Builds the ledger over a SQL client. */
export const make: Effect.Effect<ActionLedgerShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal("tenant_id, idempotency_key, agent, action, input, status, outcome, result, trace_id, created_at")
  const rows = (rs: ReadonlyArray<unknown>) => Effect.map(decodeRows(rs), (r) => r.map(toRecord))

  const get = Effect.fn("ActionLedger.get")(
    function* (tenant: TenantId, key: string) {
      return yield* Tenancy.within(sql, tenant)(
        Effect.flatMap(sql`SELECT ${columns} FROM agent_actions WHERE tenant_id = ${tenant} AND idempotency_key = ${key}`, (rs) =>
          Effect.map(rows(rs), (r) => Option.fromNullable(r[0]))
        )
      )
    },
    Effect.mapError(Errors.refine("ActionLedger.get"))
  )

  const list = Effect.fn("ActionLedger.list")(
    function* (tenant: TenantId, prefix: string) {
      return yield* Tenancy.within(sql, tenant)(
        Effect.flatMap(
          sql`SELECT ${columns} FROM agent_actions WHERE tenant_id = ${tenant} AND idempotency_key LIKE ${likePrefix(prefix)}
              ORDER BY created_at, idempotency_key`,
          rows
        )
      )
    },
    Effect.mapError(Errors.refine("ActionLedger.list"))
  )

  const once = <E, R>(tenant: TenantId, key: ActionKey, run: Effect.Effect<ActionOutcome, E, R>) =>
    Effect.gen(function* () {
      const actor = yield* Tenancy.currentActor
      return yield* Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          // begin: the key first; a concurrent holder of the same key makes this wait for its commit
          const began = yield* sql`
            INSERT INTO agent_actions (tenant_id, idempotency_key, agent, action, input, status, trace_id)
            VALUES (${tenant}, ${key.idempotencyKey}, ${key.agent}, ${key.action}, ${JSON.stringify(key.input ?? null)}::jsonb,
                    'pending', ${actor.traceId})
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
            RETURNING idempotency_key`
          if (began.length === 0) {
            const found = yield* Effect.flatMap(
              sql`SELECT ${columns} FROM agent_actions WHERE tenant_id = ${tenant} AND idempotency_key = ${key.idempotencyKey}`,
              rows
            )
            const r = found[0]
            return {
              outcome: r?.outcome ?? "pending",
              result: (r?.result ?? {}) as Record<string, unknown>,
              duplicate: true
            } satisfies Once
          }
          const done = yield* run
          yield* sql`
            UPDATE agent_actions SET status = 'done', outcome = ${done.outcome}, result = ${JSON.stringify(done.result)}::jsonb,
                   finished_at = now()
            WHERE tenant_id = ${tenant} AND idempotency_key = ${key.idempotencyKey}`
          return { ...done, duplicate: false } satisfies Once
        })
      )
    }).pipe(
      // the ledger's own failures (statements, the transaction) become storage errors; the action's pass as they are
      Effect.mapError((e): E | StorageError => (isOwn(e) ? Errors.refine("ActionLedger.once")(e) : (e as E))),
      Effect.withSpan("ActionLedger.once", { attributes: { key: key.idempotencyKey, action: key.action } })
    )

  return { once, get, list }
})

/** The ledger over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<ActionLedger, never, SqlClient.SqlClient> = Layer.effect(ActionLedger, make)
