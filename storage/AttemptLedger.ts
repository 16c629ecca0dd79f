/**
 * The attempt ledger of real channels (Vapi calls, SMTP mail, SMS): a row is written
 * *before* the provider is called and finished after, keyed by tenant and the delivery's
 * idempotency key. A re-run finds the row: finished → the recorded outcome is returned and
 * nothing is sent; still pending → the channel reconciles with the provider (Vapi
 * `calls.list`) or reports the attempt as uncertain instead of contacting anyone twice.
 *
 * `begin` also enforces two limits, atomically across nodes (one tenant transaction holding
 * an advisory lock per tenant and account): at most `maxPerDay` attempts per sending account
 * (mailbox, number) since `dayStart`, and at most `maxActive` pending attempts per account
 * (Vapi's per-account concurrency).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { Channel } from "../protocols/Campaign.js"
import * as Decoder from "../protocols/Decoder.js"
import type { TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** Where an attempt is. */
export const AttemptStatus = Schema.Literal("pending", "done", "failed")
export type AttemptStatus = typeof AttemptStatus.Type

/** One recorded attempt. */
export interface Attempt {
  readonly tenantId: TenantId
  readonly idempotencyKey: string
  readonly channel: Channel
  /** The sending identity the limits count against (mailbox, number, provider account). */
  readonly account: string
  readonly recipient: string
  readonly status: AttemptStatus
  /** The provider's id for it (Vapi call id, SMTP message id, SMS sid), once known. */
  readonly providerRef: string | null
  readonly outcome: string | null
  readonly detail: string | null
  readonly result: unknown
  readonly createdAt: Date
}

/** The limits `begin` checks. Null: no limit. */
export interface AttemptLimits {
  readonly maxPerDay: number | null
  /** Start of the account's current day. */
  readonly dayStart: Date
  readonly maxActive: number | null
  /** Pending attempts older than this no longer count as active (lost webhooks). */
  readonly activeSince: Date
}

/** What `begin` decided. */
export type Begun =
  | { readonly _tag: "Began"; readonly attempt: Attempt }
  | { readonly _tag: "Existing"; readonly attempt: Attempt }
  | { readonly _tag: "Refused"; readonly reason: "daily-limit" | "concurrency"; readonly used: number }

/** The attempt ledger. */
export interface AttemptLedgerShape {
  readonly begin: (
    attempt: Pick<Attempt, "tenantId" | "idempotencyKey" | "channel" | "account" | "recipient">,
    limits: AttemptLimits
  ) => Effect.Effect<Begun, StorageError>
  /** Records the provider's id of a pending attempt. */
  readonly setProviderRef: (tenant: TenantId, key: string, ref: string) => Effect.Effect<void, StorageError>
  /** Finishes a pending attempt; false when it was already finished (a duplicate). */
  readonly finish: (
    tenant: TenantId,
    key: string,
    done: { readonly status: "done" | "failed"; readonly outcome: string; readonly detail: string; readonly result: unknown; readonly providerRef?: string | null }
  ) => Effect.Effect<boolean, StorageError>
  /** Deletes a pending attempt the provider surely never took (so a retry may send). */
  readonly forget: (tenant: TenantId, key: string) => Effect.Effect<void, StorageError>
  readonly get: (tenant: TenantId, key: string) => Effect.Effect<Option.Option<Attempt>, StorageError>
  readonly byProviderRef: (tenant: TenantId, ref: string) => Effect.Effect<Option.Option<Attempt>, StorageError>
}

/** The attempt ledger service. */
export class AttemptLedger extends Context.Tag("nexus/storage/AttemptLedger")<AttemptLedger, AttemptLedgerShape>() {}

const Row = Schema.Struct({
  tenant_id: Schema.String,
  idempotency_key: Schema.String,
  channel: Channel,
  account: Schema.String,
  recipient: Schema.String,
  status: AttemptStatus,
  provider_ref: Schema.NullOr(Schema.String),
  outcome: Schema.NullOr(Schema.String),
  detail: Schema.NullOr(Schema.String),
  result: Schema.Unknown,
  created_at: Schema.DateFromSelf
})
const decodeRows = Decoder.effect(Schema.Array(Row))
const toAttempt = (r: typeof Row.Type): Attempt => ({
  tenantId: r.tenant_id as TenantId,
  idempotencyKey: r.idempotency_key,
  channel: r.channel,
  account: r.account,
  recipient: r.recipient,
  status: r.status,
  providerRef: r.provider_ref,
  outcome: r.outcome,
  detail: r.detail,
  result: r.result,
  createdAt: r.created_at
})

/** Builds the ledger over a SQL client. */
export const make: Effect.Effect<AttemptLedgerShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal(
    "tenant_id, idempotency_key, channel, account, recipient, status, provider_ref, outcome, detail, result, created_at"
  )
  const one = (rows: ReadonlyArray<unknown>) =>
    Effect.map(decodeRows(rows), (rs) => Option.map(Option.fromNullable(rs[0]), toAttempt))

  const get = Effect.fn("AttemptLedger.get")(
    function* (tenant: TenantId, key: string) {
      return yield* Tenancy.within(sql, tenant)(
        Effect.flatMap(sql`SELECT ${columns} FROM channel_attempts WHERE tenant_id = ${tenant} AND idempotency_key = ${key}`, one)
      )
    },
    Effect.mapError(Errors.refine("AttemptLedger.get"))
  )

  const byProviderRef = Effect.fn("AttemptLedger.byProviderRef")(
    function* (tenant: TenantId, ref: string) {
      return yield* Tenancy.within(sql, tenant)(
        Effect.flatMap(sql`SELECT ${columns} FROM channel_attempts WHERE tenant_id = ${tenant} AND provider_ref = ${ref} LIMIT 1`, one)
      )
    },
    Effect.mapError(Errors.refine("AttemptLedger.byProviderRef"))
  )

  const count = (tenant: TenantId, account: string, since: Date, pendingOnly: boolean) =>
    Effect.map(
      sql<{ n: number }>`
        SELECT count(*)::int AS n FROM channel_attempts
        WHERE tenant_id = ${tenant} AND account = ${account} AND created_at >= ${since}
          AND (${!pendingOnly} OR status = 'pending')`,
      (rows) => rows[0]?.n ?? 0
    )

  const begin = Effect.fn("AttemptLedger.begin")(
    function* (a: Pick<Attempt, "tenantId" | "idempotencyKey" | "channel" | "account" | "recipient">, limits: AttemptLimits) {
      return yield* Tenancy.within(sql, a.tenantId)(
        Effect.gen(function* () {
          // one writer per account at a time: the counts below and the insert are one decision
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`${a.tenantId}/${a.account}`}))`
          const existing = yield* get(a.tenantId, a.idempotencyKey)
          if (Option.isSome(existing)) return { _tag: "Existing", attempt: existing.value } satisfies Begun
          if (limits.maxPerDay !== null) {
            const used = yield* count(a.tenantId, a.account, limits.dayStart, false)
            if (used >= limits.maxPerDay) return { _tag: "Refused", reason: "daily-limit", used } satisfies Begun
          }
          if (limits.maxActive !== null) {
            const used = yield* count(a.tenantId, a.account, limits.activeSince, true)
            if (used >= limits.maxActive) return { _tag: "Refused", reason: "concurrency", used } satisfies Begun
          }
          const rows = yield* sql`
            INSERT INTO channel_attempts (tenant_id, idempotency_key, channel, account, recipient, status)
            VALUES (${a.tenantId}, ${a.idempotencyKey}, ${a.channel}, ${a.account}, ${a.recipient}, 'pending')
            RETURNING ${columns}`
          const inserted = yield* one(rows)
          return { _tag: "Began", attempt: Option.getOrThrow(inserted) } satisfies Begun
        })
      )
    },
    Effect.mapError(Errors.refine("AttemptLedger.begin"))
  )

  const setProviderRef = Effect.fn("AttemptLedger.setProviderRef")(
    function* (tenant: TenantId, key: string, ref: string) {
      yield* Tenancy.within(sql, tenant)(
        sql`UPDATE channel_attempts SET provider_ref = ${ref} WHERE tenant_id = ${tenant} AND idempotency_key = ${key}`
      )
    },
    Effect.mapError(Errors.refine("AttemptLedger.setProviderRef"))
  )

  const finish = Effect.fn("AttemptLedger.finish")(
    function* (
      tenant: TenantId,
      key: string,
      done: { readonly status: "done" | "failed"; readonly outcome: string; readonly detail: string; readonly result: unknown; readonly providerRef?: string | null }
    ) {
      const rows = yield* Tenancy.within(sql, tenant)(sql`
        UPDATE channel_attempts
        SET status = ${done.status}, outcome = ${done.outcome}, detail = ${done.detail},
            result = ${JSON.stringify(done.result ?? null)}::jsonb, finished_at = now(),
            provider_ref = COALESCE(${done.providerRef ?? null}, provider_ref)
        WHERE tenant_id = ${tenant} AND idempotency_key = ${key} AND status = 'pending'
        RETURNING idempotency_key`)
      return rows.length > 0
    },
    Effect.mapError(Errors.refine("AttemptLedger.finish"))
  )

  const forget = Effect.fn("AttemptLedger.forget")(
    function* (tenant: TenantId, key: string) {
      yield* Tenancy.within(sql, tenant)(
        sql`DELETE FROM channel_attempts WHERE tenant_id = ${tenant} AND idempotency_key = ${key} AND status = 'pending'`
      )
    },
    Effect.mapError(Errors.refine("AttemptLedger.forget"))
  )

  return { begin, setProviderRef, finish, forget, get, byProviderRef }
})

/** The ledger over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<AttemptLedger, never, SqlClient.SqlClient> = Layer.effect(AttemptLedger, make)
