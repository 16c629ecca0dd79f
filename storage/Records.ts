/**
 * The CRM records beside contacts and campaigns: tenants, companies, deals, activities,
 * tasks and meetings, and the contact fields they link (company) or remove. Writes are upserts that change a
 * row only when a value differs, so a repeated write changes nothing and leaves no audit
 * row; every real change is audited by the database (see `AuditLog`).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import { Company, CompanyId, Deal, DealId } from "../protocols/Inbound.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** Kinds of logged activity. */
export const ActivityKind = Schema.Literal("call", "email", "meeting", "sms", "note", "task")
export type ActivityKind = typeof ActivityKind.Type

/** A logged activity (the CRM's timeline entry; the conversation itself is an episode). */
export const Activity = Schema.Struct({
  id: Schema.String,
  kind: ActivityKind,
  contactId: Schema.NullOr(Schema.String),
  companyId: Schema.NullOr(Schema.String),
  dealId: Schema.NullOr(Schema.String),
  subject: Schema.String,
  occurredAt: Schema.DateFromSelf,
  episodeId: Schema.NullOr(Schema.String)
})
export type Activity = typeof Activity.Type

/** A follow-up task for the sales team. */
export const Task = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  contactId: Schema.NullOr(Schema.String),
  campaignId: Schema.NullOr(Schema.String),
  dueAt: Schema.NullOr(Schema.DateFromSelf),
  status: Schema.Literal("open", "done", "cancelled")
})
export type Task = typeof Task.Type

/** A meeting proposed to a contact, to fall between `earliest` and `latest`. */
export const Meeting = Schema.Struct({
  id: Schema.String,
  contactId: Schema.String,
  campaignId: Schema.NullOr(Schema.String),
  status: Schema.Literal("proposed", "booked", "held", "cancelled"),
  earliest: Schema.DateFromSelf,
  latest: Schema.DateFromSelf
})
export type Meeting = typeof Meeting.Type

/** The record repository. */
export interface RecordsShape {
  /** Registers the tenant (or renames it); true when something changed. */
  readonly upsertTenant: (tenant: TenantId, name: string) => Effect.Effect<boolean, StorageError>
  /** The tenant's name, if registered. */
  readonly tenantName: (tenant: TenantId) => Effect.Effect<Option.Option<string>, StorageError>
  /** Inserts or updates companies; returns how many rows changed. */
  readonly upsertCompanies: (tenant: TenantId, companies: ReadonlyArray<Company>) => Effect.Effect<number, StorageError>
  readonly getCompany: (tenant: TenantId, id: CompanyId) => Effect.Effect<Option.Option<Company>, StorageError>
  /** Deletes a company; true when it existed. */
  readonly deleteCompany: (tenant: TenantId, id: CompanyId) => Effect.Effect<boolean, StorageError>
  /** Inserts or updates deals; returns how many rows changed. */
  readonly upsertDeals: (tenant: TenantId, deals: ReadonlyArray<Deal>) => Effect.Effect<number, StorageError>
  readonly getDeal: (tenant: TenantId, id: DealId) => Effect.Effect<Option.Option<Deal>, StorageError>
  /** The deals of a company, by id. */
  readonly dealsOf: (tenant: TenantId, companyId: CompanyId) => Effect.Effect<ReadonlyArray<Deal>, StorageError>
  /** Deletes a deal; true when it existed. */
  readonly deleteDeal: (tenant: TenantId, id: DealId) => Effect.Effect<boolean, StorageError>
  /** Records activities unless their ids exist; returns how many were new. */
  readonly recordActivities: (tenant: TenantId, activities: ReadonlyArray<Activity>) => Effect.Effect<number, StorageError>
  /** The latest `limit` activities of a contact, newest first. */
  readonly activitiesOf: (tenant: TenantId, contactId: ContactId, limit: number) => Effect.Effect<ReadonlyArray<Activity>, StorageError>
  /** Creates a task unless its id exists; true when it was new. */
  readonly createTask: (tenant: TenantId, task: Task) => Effect.Effect<boolean, StorageError>
  /** The tasks of a campaign, by id. */
  readonly tasksOf: (tenant: TenantId, campaignId: string) => Effect.Effect<ReadonlyArray<Task>, StorageError>
  /** Records a meeting unless its id exists; true when it was new. */
  readonly proposeMeeting: (tenant: TenantId, meeting: Meeting) => Effect.Effect<boolean, StorageError>
  /** The meetings of a contact, by id. */
  readonly meetingsOf: (tenant: TenantId, contactId: ContactId) => Effect.Effect<ReadonlyArray<Meeting>, StorageError>
  /** Links a contact to its company (null unlinks); true when it changed. */
  readonly setContactCompany: (tenant: TenantId, contactId: ContactId, companyId: CompanyId | null) => Effect.Effect<boolean, StorageError>
  /** Deletes a contact; true when it existed. */
  readonly deleteContact: (tenant: TenantId, contactId: ContactId) => Effect.Effect<boolean, StorageError>
}

/** The record repository service. */
export class Records extends Context.Tag("nexus/storage/Records")<Records, RecordsShape>() {}

/** Rows per INSERT statement. */
const batchSize = 500

const CompanyRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  domain: Schema.NullOr(Schema.String),
  industry: Schema.NullOr(Schema.String),
  region: Schema.NullOr(Schema.String),
  segment: Schema.NullOr(Schema.String)
})
const decodeCompanies = Schema.decodeUnknown(Schema.Array(Schema.compose(CompanyRow, Company, { strict: false })))

const DealRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  company_id: Schema.NullOr(Schema.String),
  contact_id: Schema.NullOr(Schema.String),
  stage: Schema.String,
  amount: Schema.Number,
  currency: Schema.String,
  products: Schema.Array(Schema.String),
  expected_close: Schema.NullOr(Schema.DateFromSelf)
})
const decodeDeals = (rows: ReadonlyArray<unknown>) =>
  Effect.flatMap(Schema.decodeUnknown(Schema.Array(DealRow))(rows), (rs) =>
    Schema.decodeUnknown(Schema.Array(Deal))(
      rs.map((r) => ({
        id: r.id,
        name: r.name,
        companyId: r.company_id,
        contactId: r.contact_id,
        stage: r.stage,
        amount: r.amount,
        currency: r.currency,
        products: r.products,
        expectedClose: r.expected_close === null ? null : r.expected_close.getTime()
      }))
    )
  )

const ActivityRow = Schema.Struct({
  id: Schema.String,
  kind: ActivityKind,
  contact_id: Schema.NullOr(Schema.String),
  company_id: Schema.NullOr(Schema.String),
  deal_id: Schema.NullOr(Schema.String),
  subject: Schema.String,
  occurred_at: Schema.DateFromSelf,
  episode_id: Schema.NullOr(Schema.String)
})
const decodeActivities = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(ActivityRow))(rows), (rs) =>
    rs.map((r): Activity => ({
      id: r.id,
      kind: r.kind,
      contactId: r.contact_id,
      companyId: r.company_id,
      dealId: r.deal_id,
      subject: r.subject,
      occurredAt: r.occurred_at,
      episodeId: r.episode_id
    }))
  )

const TaskRow = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  contact_id: Schema.NullOr(Schema.String),
  campaign_id: Schema.NullOr(Schema.String),
  due_at: Schema.NullOr(Schema.DateFromSelf),
  status: Task.fields.status
})
const decodeTasks = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(TaskRow))(rows), (rs) =>
    rs.map((r): Task => ({ id: r.id, title: r.title, contactId: r.contact_id, campaignId: r.campaign_id, dueAt: r.due_at, status: r.status }))
  )

const MeetingRow = Schema.Struct({
  id: Schema.String,
  contact_id: Schema.String,
  campaign_id: Schema.NullOr(Schema.String),
  status: Meeting.fields.status,
  earliest: Schema.DateFromSelf,
  latest: Schema.DateFromSelf
})
const decodeMeetings = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(MeetingRow))(rows), (rs) =>
    rs.map((r): Meeting => ({ id: r.id, contactId: r.contact_id, campaignId: r.campaign_id, status: r.status, earliest: r.earliest, latest: r.latest }))
  )

/** Builds the repository over a SQL client. */
export const make: Effect.Effect<RecordsShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const scoped =
    (operation: string) =>
    <A, E>(effect: Effect.Effect<A, E>, tenant: TenantId): Effect.Effect<A, StorageError> =>
      Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine(`Records.${operation}`)))

  const upsertTenant = Effect.fn("Records.upsertTenant")(function* (tenant: TenantId, name: string) {
    const rows = yield* sql`
      INSERT INTO tenants (id, name) VALUES (${tenant}, ${name})
      ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name WHERE tenants.name IS DISTINCT FROM EXCLUDED.name
      RETURNING id`
    return rows.length > 0
  }, scoped("upsertTenant"))

  const tenantName = Effect.fn("Records.tenantName")(function* (tenant: TenantId) {
    const rows = yield* sql<{ name: string }>`SELECT name FROM tenants WHERE id = ${tenant}`
    return Option.fromNullable(rows[0]?.name)
  }, scoped("tenantName"))

  const upsertCompanies = Effect.fn("Records.upsertCompanies")(function* (tenant: TenantId, companies: ReadonlyArray<Company>) {
    let changed = 0
    for (let i = 0; i < companies.length; i += batchSize) {
      const batch = companies.slice(i, i + batchSize).map((c) => ({
        tenant_id: tenant, id: c.id, name: c.name, domain: c.domain, industry: c.industry, region: c.region, segment: c.segment
      }))
      const rows = yield* sql`
        INSERT INTO companies ${sql.insert(batch)}
        ON CONFLICT (tenant_id, id) DO UPDATE SET
          name = EXCLUDED.name, domain = EXCLUDED.domain, industry = EXCLUDED.industry,
          region = EXCLUDED.region, segment = EXCLUDED.segment, updated_at = now()
        WHERE (companies.name, companies.domain, companies.industry, companies.region, companies.segment)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.domain, EXCLUDED.industry, EXCLUDED.region, EXCLUDED.segment)
        RETURNING id`
      changed += rows.length
    }
    return changed
  }, scoped("upsertCompanies"))

  const getCompany = Effect.fn("Records.getCompany")(function* (tenant: TenantId, id: CompanyId) {
    const rows = yield* sql`
      SELECT id, name, domain, industry, region, segment FROM companies WHERE tenant_id = ${tenant} AND id = ${id}`
    return Option.fromNullable((yield* decodeCompanies(rows))[0])
  }, scoped("getCompany"))

  const deleteCompany = Effect.fn("Records.deleteCompany")(function* (tenant: TenantId, id: CompanyId) {
    const rows = yield* sql`DELETE FROM companies WHERE tenant_id = ${tenant} AND id = ${id} RETURNING id`
    return rows.length > 0
  }, scoped("deleteCompany"))

  const upsertDeals = Effect.fn("Records.upsertDeals")(function* (tenant: TenantId, deals: ReadonlyArray<Deal>) {
    let changed = 0
    for (let i = 0; i < deals.length; i += batchSize) {
      const batch = deals.slice(i, i + batchSize).map((d) => ({
        tenant_id: tenant, id: d.id, name: d.name, company_id: d.companyId, contact_id: d.contactId, stage: d.stage,
        amount: d.amount, currency: d.currency, products: d.products as Array<string>,
        expected_close: d.expectedClose === null ? null : new Date(d.expectedClose)
      }))
      const rows = yield* sql`
        INSERT INTO deals ${sql.insert(batch)}
        ON CONFLICT (tenant_id, id) DO UPDATE SET
          name = EXCLUDED.name, company_id = EXCLUDED.company_id, contact_id = EXCLUDED.contact_id,
          stage = EXCLUDED.stage, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
          products = EXCLUDED.products, expected_close = EXCLUDED.expected_close, updated_at = now()
        WHERE (deals.name, deals.company_id, deals.contact_id, deals.stage, deals.amount, deals.currency,
               deals.products, deals.expected_close)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.company_id, EXCLUDED.contact_id, EXCLUDED.stage, EXCLUDED.amount,
               EXCLUDED.currency, EXCLUDED.products, EXCLUDED.expected_close)
        RETURNING id`
      changed += rows.length
    }
    return changed
  }, scoped("upsertDeals"))

  const dealColumns = sql.literal("id, name, company_id, contact_id, stage, amount, currency, products, expected_close")

  const getDeal = Effect.fn("Records.getDeal")(function* (tenant: TenantId, id: DealId) {
    const rows = yield* sql`SELECT ${dealColumns} FROM deals WHERE tenant_id = ${tenant} AND id = ${id}`
    return Option.fromNullable((yield* decodeDeals(rows))[0])
  }, scoped("getDeal"))

  const dealsOf = Effect.fn("Records.dealsOf")(function* (tenant: TenantId, companyId: CompanyId) {
    const rows = yield* sql`
      SELECT ${dealColumns} FROM deals WHERE tenant_id = ${tenant} AND company_id = ${companyId} ORDER BY id`
    return yield* decodeDeals(rows)
  }, scoped("dealsOf"))

  const deleteDeal = Effect.fn("Records.deleteDeal")(function* (tenant: TenantId, id: DealId) {
    const rows = yield* sql`DELETE FROM deals WHERE tenant_id = ${tenant} AND id = ${id} RETURNING id`
    return rows.length > 0
  }, scoped("deleteDeal"))

  const recordActivities = Effect.fn("Records.recordActivities")(function* (tenant: TenantId, activities: ReadonlyArray<Activity>) {
    let added = 0
    for (let i = 0; i < activities.length; i += batchSize) {
      const batch = activities.slice(i, i + batchSize).map((a) => ({
        tenant_id: tenant, id: a.id, kind: a.kind, contact_id: a.contactId, company_id: a.companyId, deal_id: a.dealId,
        subject: a.subject, occurred_at: a.occurredAt, episode_id: a.episodeId
      }))
      const rows = yield* sql`INSERT INTO activities ${sql.insert(batch)} ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id`
      added += rows.length
    }
    return added
  }, scoped("recordActivities"))

  const activitiesOf = Effect.fn("Records.activitiesOf")(function* (tenant: TenantId, contactId: ContactId, limit: number) {
    const rows = yield* sql`
      SELECT id, kind, contact_id, company_id, deal_id, subject, occurred_at, episode_id FROM activities
      WHERE tenant_id = ${tenant} AND contact_id = ${contactId}
      ORDER BY occurred_at DESC, id ASC LIMIT ${Math.max(0, Math.floor(limit))}`
    return yield* decodeActivities(rows)
  }, scoped("activitiesOf"))

  const createTask = Effect.fn("Records.createTask")(function* (tenant: TenantId, t: Task) {
    const rows = yield* sql`
      INSERT INTO tasks (tenant_id, id, title, contact_id, campaign_id, due_at, status)
      VALUES (${tenant}, ${t.id}, ${t.title}, ${t.contactId}, ${t.campaignId}, ${t.dueAt}, ${t.status})
      ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id`
    return rows.length > 0
  }, scoped("createTask"))

  const tasksOf = Effect.fn("Records.tasksOf")(function* (tenant: TenantId, campaignId: string) {
    const rows = yield* sql`
      SELECT id, title, contact_id, campaign_id, due_at, status FROM tasks
      WHERE tenant_id = ${tenant} AND campaign_id = ${campaignId} ORDER BY id`
    return yield* decodeTasks(rows)
  }, scoped("tasksOf"))

  const proposeMeeting = Effect.fn("Records.proposeMeeting")(function* (tenant: TenantId, m: Meeting) {
    const rows = yield* sql`
      INSERT INTO meetings (tenant_id, id, contact_id, campaign_id, status, earliest, latest)
      VALUES (${tenant}, ${m.id}, ${m.contactId}, ${m.campaignId}, ${m.status}, ${m.earliest}, ${m.latest})
      ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id`
    return rows.length > 0
  }, scoped("proposeMeeting"))

  const meetingsOf = Effect.fn("Records.meetingsOf")(function* (tenant: TenantId, contactId: ContactId) {
    const rows = yield* sql`
      SELECT id, contact_id, campaign_id, status, earliest, latest FROM meetings
      WHERE tenant_id = ${tenant} AND contact_id = ${contactId} ORDER BY id`
    return yield* decodeMeetings(rows)
  }, scoped("meetingsOf"))

  const setContactCompany = Effect.fn("Records.setContactCompany")(
    function* (tenant: TenantId, contactId: ContactId, companyId: CompanyId | null) {
      const rows = yield* sql`
        UPDATE contacts SET company_id = ${companyId}
        WHERE tenant_id = ${tenant} AND id = ${contactId} AND company_id IS DISTINCT FROM ${companyId}
        RETURNING id`
      return rows.length > 0
    },
    scoped("setContactCompany")
  )

  const deleteContact = Effect.fn("Records.deleteContact")(function* (tenant: TenantId, contactId: ContactId) {
    const rows = yield* sql`DELETE FROM contacts WHERE tenant_id = ${tenant} AND id = ${contactId} RETURNING id`
    return rows.length > 0
  }, scoped("deleteContact"))

  return {
    upsertTenant, tenantName, upsertCompanies, getCompany, deleteCompany, upsertDeals, getDeal, dealsOf, deleteDeal,
    recordActivities, activitiesOf, createTask, tasksOf, proposeMeeting, meetingsOf, setContactCompany, deleteContact
  }
})

/** The repository over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<Records, never, SqlClient.SqlClient> = Layer.effect(Records, make)
