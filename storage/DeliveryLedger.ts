/**
 * The delivery ledger: one row per outside effect (a sandbox call, email or SMS), keyed by
 * tenant and idempotency key. Recording is insert-if-absent, so whoever records a key first
 * owns it and every later attempt reads back that original: an effect is performed and
 * counted at most once per key, however often its message is redelivered.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Exit, Layer, Option, Schema } from "effect"
import { Channel, DeliveryOutcome } from "../protocols/Campaign.js"
import * as Decoder from "../protocols/Decoder.js"
import { CampaignId, ContactId, TenantId } from "../protocols/Ids.js"
import * as Trace from "../protocols/Trace.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Batched from "./internal/Batched.js"
import * as Tenancy from "./Tenancy.js"

/** One recorded delivery. */
export const DeliveryEntry = Schema.Struct({
  tenantId: TenantId,
  idempotencyKey: Schema.String,
  campaignId: CampaignId,
  contactId: ContactId,
  channel: Channel,
  recipient: Schema.String,
  subject: Schema.NullOr(Schema.String),
  body: Schema.String,
  outcome: DeliveryOutcome,
  detail: Schema.String,
  durationSec: Schema.Number,
  transcript: Schema.NullOr(Schema.String),
  createdAt: Schema.DateFromSelf
})
export type DeliveryEntry = typeof DeliveryEntry.Type

/** What `record` takes: an entry without its timestamp (the database sets it). */
export type NewDelivery = Omit<DeliveryEntry, "createdAt">

/** The result of `record`: the stored entry, and whether it was there before this call. */
export interface Recorded {
  readonly entry: DeliveryEntry
  readonly duplicate: boolean
}

/** The delivery ledger. */
export interface DeliveryLedgerShape {
  /** Records `entry` unless its key exists; returns the stored entry (the original on a duplicate). */
  readonly record: (entry: NewDelivery) => Effect.Effect<Recorded, StorageError>
  /** One entry by idempotency key. */
  readonly get: (tenant: TenantId, idempotencyKey: string) => Effect.Effect<Option.Option<DeliveryEntry>, StorageError>
  /** The entries of a campaign, oldest first. */
  readonly byCampaign: (tenant: TenantId, campaignId: CampaignId) => Effect.Effect<ReadonlyArray<DeliveryEntry>, StorageError>
  /** How many entries a campaign has. */
  readonly countByCampaign: (tenant: TenantId, campaignId: CampaignId) => Effect.Effect<number, StorageError>
}

/** The delivery ledger service. */
export class DeliveryLedger extends Context.Tag("nexus/storage/DeliveryLedger")<DeliveryLedger, DeliveryLedgerShape>() {}

/** A `deliveries` row as the driver returns it. */
const DeliveryRow = Schema.Struct({
  tenant_id: Schema.String,
  idempotency_key: Schema.String,
  campaign_id: Schema.String,
  contact_id: Schema.String,
  channel: Channel,
  recipient: Schema.String,
  subject: Schema.NullOr(Schema.String),
  body: Schema.String,
  outcome: DeliveryOutcome,
  detail: Schema.String,
  duration_sec: Schema.Number,
  transcript: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf
})

/** A delivery as the columns it is inserted with (all but `created_at`, which the database sets). */
const columnsOf = (e: Omit<typeof DeliveryEntry.Encoded, "createdAt">) => ({
  tenant_id: e.tenantId,
  idempotency_key: e.idempotencyKey,
  campaign_id: e.campaignId,
  contact_id: e.contactId,
  channel: e.channel,
  recipient: e.recipient,
  subject: e.subject,
  body: e.body,
  outcome: e.outcome,
  detail: e.detail,
  duration_sec: e.durationSec,
  transcript: e.transcript
})

/** A `deliveries` row → `DeliveryEntry`. */
const DeliveryFromRow = Schema.transform(DeliveryRow, DeliveryEntry, {
  strict: true,
  decode: (r) => ({
    tenantId: r.tenant_id,
    idempotencyKey: r.idempotency_key,
    campaignId: r.campaign_id,
    contactId: r.contact_id,
    channel: r.channel,
    recipient: r.recipient,
    subject: r.subject,
    body: r.body,
    outcome: r.outcome,
    detail: r.detail,
    durationSec: r.duration_sec,
    transcript: r.transcript,
    createdAt: r.created_at
  }),
  encode: (e) => Object.assign(columnsOf(e), { created_at: e.createdAt })
})

const decodeRows = Decoder.effect(Schema.Array(DeliveryFromRow))

/** Builds the ledger over a SQL client. */
export const make: Effect.Effect<DeliveryLedgerShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const columns = sql.literal(
    "tenant_id, idempotency_key, campaign_id, contact_id, channel, recipient, subject, body, " +
      "outcome, detail, duration_sec, transcript, created_at"
  )

  const select = (tenant: TenantId, idempotencyKey: string) =>
    sql`SELECT ${columns} FROM deliveries WHERE tenant_id = ${tenant} AND idempotency_key = ${idempotencyKey}`

  /**
   * Records entries of one tenant: one insert-if-absent statement in a transaction of its own
   * (one round trip), then, only if some keys existed, a second statement reading their
   * originals. A concurrent insert of a key has committed by then (`ON CONFLICT` waited for
   * it), so the second statement sees it. Each entry gets its answer, in order; a key
   * repeated in `entries` is recorded once, and the later ones get it as a duplicate.
   */
  const recordAll = (entries: ReadonlyArray<NewDelivery>) =>
    Effect.gen(function* () {
      const tenant = entries[0]!.tenantId
      const inserted = yield* decodeRows(
        yield* Tenancy.write(sql, tenant)(sql`
          INSERT INTO deliveries ${sql.insert(entries.map(columnsOf))}
          ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
          RETURNING ${columns}`)
      )
      const fresh = new Map(inserted.map((e) => [e.idempotencyKey, e]))
      const existed = entries.map((e) => e.idempotencyKey).filter((k) => !fresh.has(k))
      const originals =
        existed.length === 0
          ? new Map<string, DeliveryEntry>()
          : new Map(
              (yield* decodeRows(
                yield* Tenancy.read(sql, tenant)(
                  sql`SELECT ${columns} FROM deliveries WHERE tenant_id = ${tenant} AND ${sql.in("idempotency_key", [...new Set(existed)])}`
                )
              )).map((e) => [e.idempotencyKey, e])
            )
      const claimed = new Set<string>()
      return entries.map((e): Exit.Exit<Recorded, StorageError> => {
        const key = e.idempotencyKey
        const mine = fresh.get(key)
        if (mine !== undefined) {
          const first = !claimed.has(key)
          claimed.add(key)
          return Exit.succeed({ entry: mine, duplicate: !first })
        }
        const original = originals.get(key)
        return original !== undefined
          ? Exit.succeed({ entry: original, duplicate: true })
          : Exit.fail(Errors.make("DeliveryLedger.record", "Conflict", `key ${key} conflicted but its row is gone (deleted concurrently)`))
      })
    }).pipe(Effect.mapError(Errors.refine("DeliveryLedger.record")))

  const single = (entry: NewDelivery) => Effect.flatMap(recordAll([entry]), (answers) => answers[0]!)

  // on every delivery: the calls of one turn of the event loop (the executor's deliveries
  // of one pull) share a transaction, per tenant (`Batched`)
  const batched = yield* Batched.make({ key: (e: NewDelivery) => e.tenantId, run: recordAll, single, maxBatch: 64 })
  const record = (entry: NewDelivery) =>
    batched(entry).pipe(Trace.span("DeliveryLedger.record", { captureStackTrace: false }))

  const get = Effect.fn("DeliveryLedger.get")(
    function* (tenant: TenantId, idempotencyKey: string) {
      return Option.fromNullable((yield* decodeRows(yield* select(tenant, idempotencyKey)))[0])
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("DeliveryLedger.get"))
  )

  const byCampaign = Effect.fn("DeliveryLedger.byCampaign")(
    function* (tenant: TenantId, campaignId: CampaignId) {
      const rows = yield* sql`
        SELECT ${columns} FROM deliveries WHERE tenant_id = ${tenant} AND campaign_id = ${campaignId}
        ORDER BY created_at ASC, idempotency_key ASC`
      return yield* decodeRows(rows)
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("DeliveryLedger.byCampaign"))
  )

  const countByCampaign = Effect.fn("DeliveryLedger.countByCampaign")(
    function* (tenant: TenantId, campaignId: CampaignId) {
      const rows = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = ${tenant} AND campaign_id = ${campaignId}`
      return rows[0]?.n ?? 0
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("DeliveryLedger.countByCampaign"))
  )

  return { record, get, byCampaign, countByCampaign }
})

/** The ledger over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<DeliveryLedger, never, SqlClient.SqlClient> = Layer.effect(DeliveryLedger, make)
