/**
 * Reading the audit log. The database writes it (a trigger on every record table, see
 * migration 0004): for each insert, update or delete, who made it (`actor`), the agent it
 * acted through and the trace id of that work, and the new row or the changed columns.
 * The application role may read and append, never rewrite or delete.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Schema } from "effect"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** One audited change. For an update `changes` maps each changed column to `{ from, to }`. */
export const AuditEntry = Schema.Struct({
  id: Schema.Number,
  at: Schema.DateFromSelf,
  table: Schema.String,
  rowKey: Schema.String,
  op: Schema.Literal("insert", "update", "delete"),
  actor: Schema.String,
  viaAgent: Schema.NullOr(Schema.String),
  traceId: Schema.NullOr(Schema.String),
  changes: Schema.Unknown
})
export type AuditEntry = typeof AuditEntry.Type

/** The audit log reader. */
export interface AuditLogShape {
  /** Every change of one row (`table`, key as written, e.g. the id), oldest first. */
  readonly ofRow: (tenant: TenantId, table: string, rowKey: string) => Effect.Effect<ReadonlyArray<AuditEntry>, StorageError>
  /** Every change made under one trace, oldest first. */
  readonly byTrace: (tenant: TenantId, traceId: string) => Effect.Effect<ReadonlyArray<AuditEntry>, StorageError>
  /** The latest `limit` changes of the tenant, newest first. */
  readonly recent: (tenant: TenantId, limit: number) => Effect.Effect<ReadonlyArray<AuditEntry>, StorageError>
}

/** The audit log service. */
export class AuditLog extends Context.Tag("nexus/storage/AuditLog")<AuditLog, AuditLogShape>() {}

const Row = Schema.Struct({
  id: Schema.Number,
  at: Schema.DateFromSelf,
  table_name: Schema.String,
  row_key: Schema.String,
  op: Schema.Literal("insert", "update", "delete"),
  actor: Schema.String,
  via_agent: Schema.NullOr(Schema.String),
  trace_id: Schema.NullOr(Schema.String),
  changes: Schema.Unknown
})

const decodeRows = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(Row))(rows), (rs) =>
    rs.map((r): AuditEntry => ({
      id: r.id,
      at: r.at,
      table: r.table_name,
      rowKey: r.row_key,
      op: r.op,
      actor: r.actor,
      viaAgent: r.via_agent,
      traceId: r.trace_id,
      changes: r.changes
    }))
  )

/** Builds the reader over a SQL client. */
export const make: Effect.Effect<AuditLogShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // ids are bigint; as float8 they stay exact far beyond any realistic count
  const columns = sql.literal("id::float8 AS id, at, table_name, row_key, op, actor, via_agent, trace_id, changes")
  const scoped =
    (operation: string) =>
    <A, E>(effect: Effect.Effect<A, E>, tenant: TenantId): Effect.Effect<A, StorageError> =>
      Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine(`AuditLog.${operation}`)))

  const ofRow = Effect.fn("AuditLog.ofRow")(function* (tenant: TenantId, table: string, rowKey: string) {
    return yield* decodeRows(yield* sql`
      SELECT ${columns} FROM audit_log
      WHERE tenant_id = ${tenant} AND table_name = ${table} AND row_key = ${rowKey} ORDER BY id`)
  }, scoped("ofRow"))

  const byTrace = Effect.fn("AuditLog.byTrace")(function* (tenant: TenantId, traceId: string) {
    return yield* decodeRows(yield* sql`
      SELECT ${columns} FROM audit_log WHERE tenant_id = ${tenant} AND trace_id = ${traceId} ORDER BY id`)
  }, scoped("byTrace"))

  const recent = Effect.fn("AuditLog.recent")(function* (tenant: TenantId, limit: number) {
    return yield* decodeRows(yield* sql`
      SELECT ${columns} FROM audit_log WHERE tenant_id = ${tenant}
      ORDER BY id DESC LIMIT ${Math.max(0, Math.floor(limit))}`)
  }, scoped("recent"))

  return { ofRow, byTrace, recent }
})

/** The reader over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<AuditLog, never, SqlClient.SqlClient> = Layer.effect(AuditLog, make)
