/**
 * The model-call ledger: one row per paid model call, keyed by tenant and a deterministic
 * call key (derived from the message being handled and the purpose of the call). A handler
 * re-run after a crash or a redelivery finds its earlier answer here and does not pay for
 * the call a second time. Recording is insert-if-absent: the first answer for a key wins.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as Decoder from "../protocols/Decoder.js"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** One recorded call: the decoded output and usage as JSON, money, and the routing trace. */
export interface LlmCallEntry {
  readonly tenantId: TenantId
  readonly callKey: string
  readonly task: string
  readonly provider: string
  readonly model: string
  readonly output: unknown
  readonly usage: unknown
  readonly costUsd: number
  /** What the router and breaker decided (fallbacks taken, attempts). */
  readonly trace: unknown
}

/** The ledger. */
export interface LlmCallLedgerShape {
  /** The recorded call for a key, if any. */
  readonly get: (tenant: TenantId, callKey: string) => Effect.Effect<Option.Option<LlmCallEntry>, StorageError>
  /** Records unless the key exists; returns the stored entry (the original on a duplicate). */
  readonly record: (entry: LlmCallEntry) => Effect.Effect<{ readonly entry: LlmCallEntry; readonly duplicate: boolean }, StorageError>
}

/** The model-call ledger service. */
export class LlmCallLedger extends Context.Tag("nexus/storage/LlmCallLedger")<LlmCallLedger, LlmCallLedgerShape>() {}

const Row = Schema.Struct({
  tenant_id: Schema.String,
  call_key: Schema.String,
  task: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  output: Schema.Unknown,
  usage: Schema.Unknown,
  cost_usd: Schema.Number,
  trace: Schema.Unknown
})
const decodeRows = Decoder.effect(Schema.Array(Row))

const toEntry = (r: typeof Row.Type): LlmCallEntry => ({
  tenantId: r.tenant_id as TenantId,
  callKey: r.call_key,
  task: r.task,
  provider: r.provider,
  model: r.model,
  output: r.output,
  usage: r.usage,
  costUsd: r.cost_usd,
  trace: r.trace
})

/** Builds the ledger over a SQL client. */
export const make: Effect.Effect<LlmCallLedgerShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal("tenant_id, call_key, task, provider, model, output, usage, cost_usd, trace")

  const get = Effect.fn("LlmCallLedger.get")(
    function* (tenant: TenantId, callKey: string) {
      const rows = yield* Tenancy.within(sql, tenant)(
        sql`SELECT ${columns} FROM llm_calls WHERE tenant_id = ${tenant} AND call_key = ${callKey}`
      )
      return Option.map(Option.fromNullable((yield* decodeRows(rows))[0]), toEntry)
    },
    Effect.mapError(Errors.refine("LlmCallLedger.get"))
  )

  const record = Effect.fn("LlmCallLedger.record")(
    function* (e: LlmCallEntry) {
      const inserted = yield* Tenancy.within(sql, e.tenantId)(sql`
        INSERT INTO llm_calls (tenant_id, call_key, task, provider, model, output, usage, cost_usd, trace)
        VALUES (${e.tenantId}, ${e.callKey}, ${e.task}, ${e.provider}, ${e.model},
                ${JSON.stringify(e.output ?? null)}::jsonb, ${JSON.stringify(e.usage ?? null)}::jsonb,
                ${e.costUsd}, ${JSON.stringify(e.trace ?? null)}::jsonb)
        ON CONFLICT (tenant_id, call_key) DO NOTHING
        RETURNING ${columns}`)
      const fresh = (yield* decodeRows(inserted))[0]
      if (fresh !== undefined) return { entry: toEntry(fresh), duplicate: false }
      const original = yield* get(e.tenantId, e.callKey)
      if (Option.isSome(original)) return { entry: original.value, duplicate: true }
      return yield* Effect.fail(
        Errors.make("LlmCallLedger.record", "Conflict", `call ${e.callKey} conflicted but its row is gone`)
      )
    },
    Effect.mapError(Errors.refine("LlmCallLedger.record"))
  )

  return { get, record }
})

/** The ledger over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<LlmCallLedger, never, SqlClient.SqlClient> = Layer.effect(LlmCallLedger, make)

/** An in-memory ledger (one process; for unit tests and the bench). */
export const layerMemory: Layer.Layer<LlmCallLedger> = Layer.sync(LlmCallLedger, () => {
  const rows = new Map<string, LlmCallEntry>()
  const k = (t: string, key: string) => `${t}\u0000${key}`
  return {
    get: (tenant, callKey) => Effect.sync(() => Option.fromNullable(rows.get(k(tenant, callKey)))),
    record: (entry) =>
      Effect.sync(() => {
        const existing = rows.get(k(entry.tenantId, entry.callKey))
        if (existing) return { entry: existing, duplicate: true }
        rows.set(k(entry.tenantId, entry.callKey), entry)
        return { entry, duplicate: false }
      })
  }
})
