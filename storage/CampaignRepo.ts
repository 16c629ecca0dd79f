/**
 * Campaign records of each tenant: started once per id, then moved to `completed` (with
 * its summary) or `rejected` (with a reason). Transitions only leave `running`, so a
 * redelivered command changes nothing and reports that it did not.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { CampaignSummary } from "../protocols/Campaign.js"
import * as Decoder from "../protocols/Decoder.js"
import { CampaignId, type TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** Where a campaign is in its life. */
export const CampaignStatus = Schema.Literal("running", "completed", "rejected")
export type CampaignStatus = typeof CampaignStatus.Type

/** A stored campaign. `spec` is the start command as given; `reason` is set when rejected. */
export const CampaignRecord = Schema.Struct({
  id: CampaignId,
  name: Schema.String,
  goal: Schema.String,
  spec: Schema.Unknown,
  status: CampaignStatus,
  summary: Schema.NullOr(CampaignSummary),
  reason: Schema.NullOr(Schema.String),
  startedAt: Schema.DateFromSelf,
  completedAt: Schema.NullOr(Schema.DateFromSelf)
})
export type CampaignRecord = typeof CampaignRecord.Type

/** What `start` records. */
export interface NewCampaign {
  readonly id: CampaignId
  readonly name: string
  readonly goal: string
  /** Any JSON value (the start command); stored as jsonb. */
  readonly spec: unknown
}

/** The campaign repository. */
export interface CampaignRepoShape {
  /** Records a running campaign unless the id exists; true when this call created it. */
  readonly start: (tenant: TenantId, campaign: NewCampaign) => Effect.Effect<boolean, StorageError>
  /** Running → completed with its summary; true when this call made the transition. */
  readonly complete: (tenant: TenantId, id: CampaignId, summary: CampaignSummary) => Effect.Effect<boolean, StorageError>
  /** Running → rejected with a reason; true when this call made the transition. */
  readonly reject: (tenant: TenantId, id: CampaignId, reason: string) => Effect.Effect<boolean, StorageError>
  /** One campaign by id. */
  readonly get: (tenant: TenantId, id: CampaignId) => Effect.Effect<Option.Option<CampaignRecord>, StorageError>
  /** Every campaign of the tenant, newest first. */
  readonly list: (tenant: TenantId) => Effect.Effect<ReadonlyArray<CampaignRecord>, StorageError>
}

/** The campaign repository service. */
export class CampaignRepo extends Context.Tag("nexus/storage/CampaignRepo")<CampaignRepo, CampaignRepoShape>() {}

/** A `campaigns` row as the driver returns it (jsonb parsed, timestamptz as Date). */
const CampaignRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  goal: Schema.String,
  spec: Schema.Unknown,
  status: CampaignStatus,
  summary: Schema.NullOr(Schema.encodedSchema(CampaignSummary)),
  reason: Schema.NullOr(Schema.String),
  started_at: Schema.DateFromSelf,
  completed_at: Schema.NullOr(Schema.DateFromSelf)
})

/** A `campaigns` row → `CampaignRecord`. */
const CampaignFromRow = Schema.transform(CampaignRow, CampaignRecord, {
  strict: true,
  decode: (r) => ({
    id: r.id,
    name: r.name,
    goal: r.goal,
    spec: r.spec,
    status: r.status,
    summary: r.summary,
    reason: r.reason,
    startedAt: r.started_at,
    completedAt: r.completed_at
  }),
  encode: (c) => ({
    id: c.id,
    name: c.name,
    goal: c.goal,
    spec: c.spec,
    status: c.status,
    summary: c.summary,
    reason: c.reason,
    started_at: c.startedAt,
    completed_at: c.completedAt
  })
})

const decodeRows = Decoder.effect(Schema.Array(CampaignFromRow))
const encodeSummary = Schema.encode(CampaignSummary)

/** Builds the repository over a SQL client. */
export const make: Effect.Effect<CampaignRepoShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const columns = sql.literal("id, name, goal, spec, status, summary, reason, started_at, completed_at")

  const start = Effect.fn("CampaignRepo.start")(
    function* (tenant: TenantId, campaign: NewCampaign) {
      const rows = yield* Tenancy.write(sql, tenant)(sql`
        INSERT INTO campaigns (tenant_id, id, name, goal, spec, status)
        VALUES (${tenant}, ${campaign.id}, ${campaign.name}, ${campaign.goal},
                ${JSON.stringify(campaign.spec ?? null)}::jsonb, 'running')
        ON CONFLICT (tenant_id, id) DO NOTHING
        RETURNING id`)
      return rows.length > 0
    },
    Effect.mapError(Errors.refine("CampaignRepo.start"))
  )

  const complete = Effect.fn("CampaignRepo.complete")(
    function* (tenant: TenantId, id: CampaignId, summary: CampaignSummary) {
      const json = JSON.stringify(yield* encodeSummary(summary))
      const rows = yield* sql`
        UPDATE campaigns SET status = 'completed', summary = ${json}::jsonb, completed_at = now()
        WHERE tenant_id = ${tenant} AND id = ${id} AND status = 'running'
        RETURNING id`
      return rows.length > 0
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("CampaignRepo.complete"))
  )

  const reject = Effect.fn("CampaignRepo.reject")(
    function* (tenant: TenantId, id: CampaignId, reason: string) {
      const rows = yield* sql`
        UPDATE campaigns SET status = 'rejected', reason = ${reason}, completed_at = now()
        WHERE tenant_id = ${tenant} AND id = ${id} AND status = 'running'
        RETURNING id`
      return rows.length > 0
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("CampaignRepo.reject"))
  )

  const get = Effect.fn("CampaignRepo.get")(
    function* (tenant: TenantId, id: CampaignId) {
      const rows = yield* sql`SELECT ${columns} FROM campaigns WHERE tenant_id = ${tenant} AND id = ${id}`
      return Option.fromNullable((yield* decodeRows(rows))[0])
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("CampaignRepo.get"))
  )

  const list = Effect.fn("CampaignRepo.list")(
    function* (tenant: TenantId) {
      const rows = yield* sql`
        SELECT ${columns} FROM campaigns WHERE tenant_id = ${tenant}
        ORDER BY started_at DESC, id ASC`
      return yield* decodeRows(rows)
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("CampaignRepo.list"))
  )

  return { start, complete, reject, get, list }
})

/** The repository over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<CampaignRepo, never, SqlClient.SqlClient> = Layer.effect(CampaignRepo, make)
