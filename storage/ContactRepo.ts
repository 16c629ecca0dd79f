/**
 * Contacts of each tenant: bulk upsert, audience filtering and keyset-paged windows in
 * the order campaigns work through them (best lead score first, then id). Rows are read
 * into the protocol's `ContactSnapshot`, validated (branded ids, segment literals).
 */
import { SqlClient, type Statement } from "@effect/sql"
import { Context, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import { AudienceFilter, ContactSnapshot, Segment } from "../protocols/Campaign.js"
import * as Decoder from "../protocols/Decoder.js"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import { type Arg, type JsonRead, row, rows as jsonRows } from "./internal/JsonRows.js"
import * as Tenancy from "./Tenancy.js"

/** Position after the last contact of a window: its lead score and id. */
export const Cursor = Schema.Struct({ score: Schema.Number, id: Schema.String })
export type Cursor = typeof Cursor.Type

/** One window of contacts; `next` is null when this window came back short (no more rows). */
export interface Window {
  readonly contacts: ReadonlyArray<ContactSnapshot>
  readonly next: Cursor | null
}

/** How many contacts match a filter, and the first of them. */
export interface Survey {
  readonly matching: number
  readonly contacts: ReadonlyArray<ContactSnapshot>
}

/**
 * The first `k` (at least 1) contacts of a window, and where the next window starts: after
 * the last one kept when some were dropped, else where the window said.
 */
export const takeFirst = (w: Window, k: number): Window => {
  if (k >= w.contacts.length) return w
  const contacts = w.contacts.slice(0, Math.max(0, k))
  const last = contacts[contacts.length - 1]
  return { contacts, next: last === undefined ? null : { score: last.leadScore, id: last.id } }
}

/** The contact repository. */
export interface ContactRepoShape {
  /** Inserts or updates contacts (by tenant and id), in batches; returns how many were written. */
  readonly insertMany: (tenant: TenantId, contacts: ReadonlyArray<ContactSnapshot>) => Effect.Effect<number, StorageError>
  /**
   * Up to `limit` contacts matching `filter`, lead score descending then id ascending,
   * starting after `after` (null: from the top). An empty list in the filter matches nothing.
   */
  readonly window: (
    tenant: TenantId,
    filter: AudienceFilter,
    after: Cursor | null,
    limit: number
  ) => Effect.Effect<Window, StorageError>
  /** How many contacts match `filter`. */
  readonly count: (tenant: TenantId, filter: AudienceFilter) => Effect.Effect<number, StorageError>
  /**
   * How many contacts match `filter` and the first `top` of them (as `window` orders them),
   * read in one statement: what a planner's audience query asks, one round trip on the way
   * to a campaign's first contact instead of two.
   */
  readonly survey: (tenant: TenantId, filter: AudienceFilter, top: number) => Effect.Effect<Survey, StorageError>
  /** One contact by id. */
  readonly get: (tenant: TenantId, id: ContactId) => Effect.Effect<Option.Option<ContactSnapshot>, StorageError>
  /** Reads to be sent inside another statement, in a tenant scope the caller opens (see `internal/JsonRows`). */
  readonly reads: {
    /** What `get` reads. */
    readonly get: (tenant: TenantId, id: Arg<ContactId>) => JsonRead<Option.Option<ContactSnapshot>, ParseResult.ParseError>
  }
}

/** The contact repository service. */
export class ContactRepo extends Context.Tag("nexus/storage/ContactRepo")<ContactRepo, ContactRepoShape>() {}

/** Rows per INSERT statement: 16 parameters a row stays far below Postgres' 65535. */
export const batchSize = 500

/** A `contacts` row as the driver returns it (without tenant and timestamps). */
const ContactRow = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  email: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  company: Schema.String,
  title: Schema.String,
  industry: Schema.String,
  segment: Segment,
  region: Schema.String,
  timezone: Schema.String,
  lead_score: Schema.Number,
  opted_out: Schema.Boolean,
  consent_voice: Schema.Boolean,
  consent_email: Schema.Boolean,
  consent_sms: Schema.Boolean
})

/** A `contacts` row ⇄ the protocol's `ContactSnapshot`. */
const ContactFromRow = Schema.transform(ContactRow, ContactSnapshot, {
  strict: true,
  decode: (r) => ({
    id: r.id,
    name: r.name,
    email: r.email,
    phone: r.phone,
    company: r.company,
    title: r.title,
    industry: r.industry,
    segment: r.segment,
    region: r.region,
    timezone: r.timezone,
    leadScore: r.lead_score,
    optedOut: r.opted_out,
    consent: { voice: r.consent_voice, email: r.consent_email, sms: r.consent_sms }
  }),
  encode: (c) => ({
    id: c.id,
    name: c.name,
    email: c.email,
    phone: c.phone,
    company: c.company,
    title: c.title,
    industry: c.industry,
    segment: c.segment,
    region: c.region,
    timezone: c.timezone,
    lead_score: c.leadScore,
    opted_out: c.optedOut,
    consent_voice: c.consent.voice,
    consent_email: c.consent.email,
    consent_sms: c.consent.sms
  })
})

const decodeRows = Decoder.effect(Schema.Array(ContactFromRow))
const encodeRows = Schema.encode(Schema.Array(ContactFromRow))

/** `%keyword%` for ILIKE, with the pattern characters of the keyword escaped. */
const containsPattern = (keyword: string): string => `%${keyword.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

const columnList =
  "id, name, email, phone, company, title, industry, segment, region, timezone, " +
  "lead_score, opted_out, consent_voice, consent_email, consent_sms"

/** The audience condition: every present field narrows (AND); lists are IN lists, keywords any-of substrings. */
const whereOf = (sql: SqlClient.SqlClient, tenant: TenantId, filter: AudienceFilter) => {
  const clauses: Array<Statement.Fragment> = [sql`tenant_id = ${tenant}`]
  if (filter.segments !== undefined) clauses.push(sql.in("segment", filter.segments))
  if (filter.industries !== undefined) clauses.push(sql.in("industry", filter.industries))
  if (filter.regions !== undefined) clauses.push(sql.in("region", filter.regions))
  if (filter.titleKeywords !== undefined) {
    clauses.push(
      filter.titleKeywords.length === 0
        ? sql`FALSE`
        : sql.or(filter.titleKeywords.map((k) => sql`title ILIKE ${containsPattern(k)}`))
    )
  }
  if (filter.minLeadScore !== undefined) clauses.push(sql`lead_score >= ${filter.minLeadScore}`)
  return sql.and(clauses)
}

/**
 * The statement of a window: up to `size` contacts of the audience after the cursor, by
 * score (highest first), then id.
 *
 * ORDER BY mixes directions, so no row comparison can resume it, and the spelled-out
 * `score < s OR (score = s AND id > i)` is no index condition: each window scanned the
 * audience from its start (two seconds a window at half a million contacts). Resuming is
 * two index seeks instead: the rest of the cursor's score, then the lower scores.
 */
export const windowStatement = (sql: SqlClient.SqlClient, tenant: TenantId, filter: AudienceFilter, after: Cursor | null, size: number) => {
  const columns = sql.literal(columnList)
  const where = whereOf(sql, tenant, filter)
  return after === null
    ? sql`
      SELECT ${columns} FROM contacts
      WHERE ${where}
      ORDER BY lead_score DESC, id ASC
      LIMIT ${size}`
    : sql`
      SELECT * FROM (
        (SELECT ${columns} FROM contacts
          WHERE ${where} AND lead_score = ${after.score} AND id > ${after.id}
          ORDER BY id ASC LIMIT ${size})
        UNION ALL
        (SELECT ${columns} FROM contacts
          WHERE ${where} AND lead_score < ${after.score}
          ORDER BY lead_score DESC, id ASC LIMIT ${size})
      ) AS resumed
      ORDER BY lead_score DESC, id ASC
      LIMIT ${size}`
}

/** Builds the repository over a SQL client. */
export const make: Effect.Effect<ContactRepoShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const columns = sql.literal(columnList)
  const where = (tenant: TenantId, filter: AudienceFilter) => whereOf(sql, tenant, filter)

  const insertMany = Effect.fn("ContactRepo.insertMany")(
    function* (tenant: TenantId, contacts: ReadonlyArray<ContactSnapshot>) {
      if (contacts.length === 0) return 0
      const rows = (yield* encodeRows(contacts)).map((r) => ({ tenant_id: tenant, ...r }))
      yield* sql.withTransaction(
        Effect.forEach(
          chunks(rows, batchSize),
          (batch) =>
            sql`INSERT INTO contacts ${sql.insert(batch)}
              ON CONFLICT (tenant_id, id) DO UPDATE SET
                name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
                company = EXCLUDED.company, title = EXCLUDED.title, industry = EXCLUDED.industry,
                segment = EXCLUDED.segment, region = EXCLUDED.region, timezone = EXCLUDED.timezone,
                lead_score = EXCLUDED.lead_score, opted_out = EXCLUDED.opted_out,
                consent_voice = EXCLUDED.consent_voice, consent_email = EXCLUDED.consent_email,
                consent_sms = EXCLUDED.consent_sms`,
          { discard: true }
        )
      )
      return rows.length
    },
    (effect, tenant) => Tenancy.within(sql, tenant)(effect),
    Effect.mapError(Errors.refine("ContactRepo.insertMany"))
  )

  const window = Effect.fn("ContactRepo.window")(
    function* (tenant: TenantId, filter: AudienceFilter, after: Cursor | null, limit: number) {
      const size = Math.max(0, Math.floor(limit))
      if (size === 0) return { contacts: [], next: null } satisfies Window
      const rows = yield* Tenancy.read(sql, tenant)(windowStatement(sql, tenant, filter, after, size))
      const contacts = yield* decodeRows(rows)
      const last = contacts[contacts.length - 1]
      const next = contacts.length < size || last === undefined ? null : { score: last.leadScore, id: last.id }
      return { contacts, next } satisfies Window
    },
    Effect.mapError(Errors.refine("ContactRepo.window"))
  )

  const count = Effect.fn("ContactRepo.count")(
    function* (tenant: TenantId, filter: AudienceFilter) {
      const rows = yield* Tenancy.read(sql, tenant)(sql<{ n: number }>`SELECT count(*)::int AS n FROM contacts WHERE ${where(tenant, filter)}`)
      return rows[0]?.n ?? 0
    },
    Effect.mapError(Errors.refine("ContactRepo.count"))
  )

  // the window's rows travel as one JSON array beside the count; their columns (text,
  // numbers, booleans) are the same in JSON (see `internal/JsonRows`)
  const survey = Effect.fn("ContactRepo.survey")(
    function* (tenant: TenantId, filter: AudienceFilter, top: number) {
      const size = Math.max(0, Math.floor(top))
      const found = yield* Tenancy.read(sql, tenant)(sql<{ n: number; top: unknown }>`
        SELECT (SELECT count(*)::int FROM contacts WHERE ${where(tenant, filter)}) AS n,
               ${jsonRows(sql, windowStatement(sql, tenant, filter, null, size), sql`r.lead_score DESC, r.id ASC`)} AS top`)
      const contacts = yield* decodeRows(found[0]?.top ?? [])
      return { matching: found[0]?.n ?? 0, contacts } satisfies Survey
    },
    Effect.mapError(Errors.refine("ContactRepo.survey"))
  )

  const byId = (tenant: TenantId, id: Arg<ContactId>) => sql`SELECT ${columns} FROM contacts WHERE tenant_id = ${tenant} AND id = ${id}`

  const get = Effect.fn("ContactRepo.get")(
    function* (tenant: TenantId, id: ContactId) {
      return Option.fromNullable((yield* decodeRows(yield* Tenancy.read(sql, tenant)(byId(tenant, id))))[0])
    },
    Effect.mapError(Errors.refine("ContactRepo.get"))
  )

  // the row's columns are text, numbers and booleans: the same in JSON
  const reads: ContactRepoShape["reads"] = {
    get: (tenant, id) => ({
      json: row(sql, byId(tenant, id)),
      decode: (json) => Effect.map(decodeRows(json === null ? [] : [json]), (rows) => Option.fromNullable(rows[0]))
    })
  }

  return { insertMany, window, count, survey, get, reads }
})

/** The repository over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<ContactRepo, never, SqlClient.SqlClient> = Layer.effect(ContactRepo, make)

const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
