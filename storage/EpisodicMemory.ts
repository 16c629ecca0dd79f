/**
 * Episodic memory: interactions stored as episodes (see `Episode`) and recalled by
 *
 *   score = a * relevance + (1 - a) * exp(-lambda * ageDays)
 *
 * where relevance is the full-text rank of the episode for the query (English stemming,
 * scaled so the best candidate scores 1) and both `a` and `lambda` come from `Config`.
 * Also answers: the last N interactions of a contact, the engagement trend over the last
 * 60 days, the last time something was mentioned, and the objections still open.
 * Recording is idempotent by episode id: the first write wins, a repeat changes nothing.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Config, Context, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import * as Decoder from "../protocols/Decoder.js"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import { columns, contactIdsOf, type Episode, EpisodeFromRow, mentionsOf, type NewEpisode, normalizeTerm } from "./Episode.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as JsonRows from "./internal/JsonRows.js"
import type { Arg, JsonRead } from "./internal/JsonRows.js"
import * as Tenancy from "./Tenancy.js"

/** Recall weights. */
export interface EpisodicSettings {
  /** `a`: weight of relevance against recency, in [0, 1]. Default 0.6 (`NEXUS_MEMORY_RELEVANCE_WEIGHT`). */
  readonly relevanceWeight: number
  /** `lambda`: recency decay per day of age. Default ln 2 / 14, a two-week half-life (`NEXUS_MEMORY_DECAY_PER_DAY`). */
  readonly decayPerDay: number
}

/** Reads the recall weights from the environment. */
export const config: Config.Config<EpisodicSettings> = Config.all({
  relevanceWeight: Config.number("NEXUS_MEMORY_RELEVANCE_WEIGHT").pipe(
    Config.withDefault(0.6),
    Config.validate({ message: "must be in [0, 1]", validation: (a) => a >= 0 && a <= 1 }),
    Config.withDescription("Weight a of relevance in a*relevance + (1-a)*exp(-lambda*age)")
  ),
  decayPerDay: Config.number("NEXUS_MEMORY_DECAY_PER_DAY").pipe(
    Config.withDefault(Math.LN2 / 14),
    Config.validate({ message: "must be >= 0", validation: (l) => l >= 0 }),
    Config.withDescription("Recency decay lambda per day of age")
  )
})

/** A recalled episode with its score and the two parts of it. */
export interface Recalled {
  readonly episode: Episode
  readonly score: number
  readonly relevance: number
  readonly recency: number
}

/** Options of `recall`. At least one of `contactId` and `query` must be given. */
export interface RecallOptions {
  /** Only this contact's episodes (all of them are candidates). */
  readonly contactId?: ContactId
  /** What to be relevant to; without a contact, only episodes matching it are candidates. */
  readonly query?: string
  /** Most episodes returned. Default 10. */
  readonly limit?: number
  /** The time ages are measured from. Default now (the `Clock`). */
  readonly asOf?: Date
}

/** One bucket of the engagement trend, oldest first. */
export interface TrendBucket {
  readonly start: Date
  readonly interactions: number
  /** Interactions the contact started. */
  readonly inbound: number
  /** `interactions + inbound`: what the contact started counts twice. */
  readonly engagement: number
}

/** Engagement over a window. */
export interface Trend {
  readonly days: number
  readonly buckets: ReadonlyArray<TrendBucket>
  /** Least-squares slope of engagement per bucket. */
  readonly slope: number
  /** `rising`/`falling` when the slope exceeds a tenth of the mean per bucket; `none` with no interactions. */
  readonly direction: "rising" | "falling" | "flat" | "none"
}

/** An objection raised and not resolved since. */
export interface OpenObjection {
  readonly topic: string
  readonly firstRaisedAt: Date
  readonly lastRaisedAt: Date
  readonly episodeId: string
  readonly times: number
}

/** The episodic memory. */
export interface EpisodicMemoryShape {
  /** Stores an episode unless its id exists; returns the stored one and whether it was there before. */
  readonly record: (tenant: TenantId, episode: NewEpisode) => Effect.Effect<{ readonly episode: Episode; readonly duplicate: boolean }, StorageError>
  readonly get: (tenant: TenantId, id: string) => Effect.Effect<Option.Option<Episode>, StorageError>
  /** The contact's last `n` interactions, newest first. */
  readonly recent: (tenant: TenantId, contactId: ContactId, n: number) => Effect.Effect<ReadonlyArray<Episode>, StorageError>
  /** Episodes ranked by relevance and recency (see the module header). */
  readonly recall: (tenant: TenantId, options: RecallOptions) => Effect.Effect<ReadonlyArray<Recalled>, StorageError>
  /** The contact's engagement over the last `days` (default 60) in `buckets` (default 6) equal parts. */
  readonly engagementTrend: (
    tenant: TenantId,
    contactId: ContactId,
    options?: { readonly days?: number; readonly buckets?: number; readonly asOf?: Date }
  ) => Effect.Effect<Trend, StorageError>
  /** The latest episode that mentions `term` (as an extracted entity or in its text). */
  readonly lastMention: (
    tenant: TenantId,
    term: string,
    options?: { readonly contactId?: ContactId }
  ) => Effect.Effect<Option.Option<Episode>, StorageError>
  /** Objections the contact raised that no later episode resolved, latest first. */
  readonly openObjections: (tenant: TenantId, contactId: ContactId) => Effect.Effect<ReadonlyArray<OpenObjection>, StorageError>
  /** Reads to be sent inside another statement, in a tenant scope the caller opens (see `internal/JsonRows`). */
  readonly reads: {
    /**
     * What `recall` reads for one contact, ages measured from `asOf`. A query given as a
     * column is trimmed already; an empty one ranks by recency alone, as no query does.
     */
    readonly recall: (
      tenant: TenantId,
      options: { readonly contactId: Arg<ContactId>; readonly asOf: Arg<Date>; readonly query?: Arg<string>; readonly limit?: number }
    ) => JsonRead<ReadonlyArray<Recalled>, ParseResult.ParseError>
    /** What `openObjections` reads. */
    readonly openObjections: (tenant: TenantId, contactId: Arg<ContactId>) => JsonRead<ReadonlyArray<OpenObjection>>
  }
}

/** The episodic memory service. */
export class EpisodicMemory extends Context.Tag("nexus/storage/EpisodicMemory")<EpisodicMemory, EpisodicMemoryShape>() {}

const decodeEpisodes = Decoder.effect(Schema.Array(EpisodeFromRow))

/** A row of `openObjections`. */
interface ObjectionRow {
  readonly term: string
  readonly label: string
  readonly first_raised: Date
  readonly last_raised: Date
  readonly episode_id: string
  readonly times: number
}
const DAY_MS = 86_400_000

/** Builds the memory over a SQL client. */
export const make = (settings: EpisodicSettings): Effect.Effect<EpisodicMemoryShape, never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const cols = sql.literal(columns)
    const a = settings.relevanceWeight
    const scoped =
      (operation: string) =>
      <A, E>(effect: Effect.Effect<A, E>, tenant: TenantId): Effect.Effect<A, StorageError> =>
        Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine(`EpisodicMemory.${operation}`)))
    const now = (asOf: Date | undefined) => (asOf ? Effect.succeed(asOf) : Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms)))
    const byId = (tenant: TenantId, id: string) =>
      Effect.flatMap(sql`SELECT ${cols} FROM episodes e WHERE e.tenant_id = ${tenant} AND e.id = ${id}`, decodeEpisodes)

    const record = Effect.fn("EpisodicMemory.record")(function* (tenant: TenantId, episode: NewEpisode) {
      const actor = yield* Tenancy.currentActor
      const inserted = yield* sql`
        INSERT INTO episodes (tenant_id, id, channel, direction, occurred_at, duration_sec, outcome, summary, content,
                              entities, participants, campaign_id, deal_id, source, recorded_by, via_agent, trace_id)
        VALUES (${tenant}, ${episode.id}, ${episode.channel}, ${episode.direction}, ${episode.occurredAt},
                ${episode.durationSec}, ${episode.outcome}, ${episode.summary}, ${episode.content},
                ${JSON.stringify(episode.entities)}::jsonb, ${JSON.stringify(episode.participants)}::jsonb,
                ${episode.campaignId}, ${episode.dealId}, ${episode.source}, ${actor.principal}, ${actor.viaAgent}, ${actor.traceId})
        ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id`
      if (inserted.length > 0) {
        const contacts = contactIdsOf(episode)
        if (contacts.length > 0) {
          yield* sql`INSERT INTO episode_contacts ${sql.insert(contacts.map((contact_id) => ({
            tenant_id: tenant, contact_id, occurred_at: episode.occurredAt, episode_id: episode.id
          })))}`
        }
        const mentions = mentionsOf(episode.entities)
        if (mentions.length > 0) {
          yield* sql`INSERT INTO episode_mentions ${sql.insert(mentions.map(([kind, term, label]) => ({
            tenant_id: tenant, episode_id: episode.id, kind, term, label, occurred_at: episode.occurredAt
          })))}`
        }
      }
      const stored = (yield* byId(tenant, episode.id))[0]!
      return { episode: stored, duplicate: inserted.length === 0 }
    }, scoped("record"))

    const get = Effect.fn("EpisodicMemory.get")(function* (tenant: TenantId, id: string) {
      return Option.fromNullable((yield* byId(tenant, id))[0])
    }, scoped("get"))

    const recent = Effect.fn("EpisodicMemory.recent")(function* (tenant: TenantId, contactId: ContactId, n: number) {
      return yield* decodeEpisodes(yield* sql`
        SELECT ${cols} FROM episode_contacts c
        JOIN episodes e ON e.tenant_id = c.tenant_id AND e.id = c.episode_id
        WHERE c.tenant_id = ${tenant} AND c.contact_id = ${contactId}
        ORDER BY c.occurred_at DESC, c.episode_id LIMIT ${Math.max(0, Math.floor(n))}`)
    }, scoped("recent"))

    // The statement of `recall`: its rows are episode rows with their relevance, recency and score.
    const recallStatement = (
      tenant: TenantId,
      options: { readonly contactId?: Arg<ContactId>; readonly query?: Arg<string>; readonly limit?: number },
      asOf: Arg<Date>
    ) => {
      const query = typeof options.query === "object" ? options.query : (options.query ?? "").trim()
      const tsq = sql`websearch_to_tsquery('english', ${query})`
      // a query in a column may be empty on some rows: ranked as no query there
      const raw = typeof query === "object"
        ? sql`CASE WHEN ${query} = '' THEN 0::float8 ELSE ts_rank_cd(e.search, ${tsq})::float8 END`
        : query.length === 0 ? sql`0::float8` : sql`ts_rank_cd(e.search, ${tsq})::float8`
      const candidates = options.contactId !== undefined
        ? sql`SELECT e.* FROM episode_contacts c JOIN episodes e ON e.tenant_id = c.tenant_id AND e.id = c.episode_id
              WHERE c.tenant_id = ${tenant} AND c.contact_id = ${options.contactId}`
        : sql`SELECT e.* FROM episodes e WHERE e.tenant_id = ${tenant} AND e.search @@ ${tsq}`
      return sql`
        WITH cand AS (${candidates}),
        ranked AS (
          SELECT e.*, ${raw} AS raw,
                 exp(-${settings.decayPerDay}::float8 * greatest(0, extract(epoch FROM (${asOf}::timestamptz - e.occurred_at)) / 86400))::float8 AS recency
          FROM cand e
        ),
        scaled AS (
          SELECT e.*, CASE WHEN max(e.raw) OVER () > 0 THEN e.raw / max(e.raw) OVER () ELSE 0 END AS relevance FROM ranked e
        )
        SELECT ${cols}, e.relevance, e.recency, (${a}::float8 * e.relevance + ${1 - a}::float8 * e.recency) AS score
        FROM scaled e
        ORDER BY score DESC, e.occurred_at DESC, e.id
        LIMIT ${Math.max(0, Math.floor(options.limit ?? 10))}`
    }
    const recalledOf = (rows: ReadonlyArray<Record<string, unknown>>) =>
      Effect.map(decodeEpisodes(rows), (episodes) =>
        episodes.map((episode, i): Recalled => ({
          episode,
          score: rows[i]!.score as number,
          relevance: rows[i]!.relevance as number,
          recency: rows[i]!.recency as number
        })))

    const recall = Effect.fn("EpisodicMemory.recall")(function* (tenant: TenantId, options: RecallOptions) {
      if (options.contactId === undefined && (options.query ?? "").trim().length === 0) {
        return yield* Effect.fail(Errors.invalid("EpisodicMemory.recall", "give a contact, a query, or both"))
      }
      return yield* recalledOf(yield* recallStatement(tenant, options, yield* now(options.asOf)))
    }, scoped("recall"))

    const engagementTrend = Effect.fn("EpisodicMemory.engagementTrend")(function* (
      tenant: TenantId,
      contactId: ContactId,
      options: { readonly days?: number; readonly buckets?: number; readonly asOf?: Date } = {}
    ) {
      const days = Math.max(1, options.days ?? 60)
      const n = Math.max(1, Math.floor(options.buckets ?? 6))
      const end = (yield* now(options.asOf)).getTime()
      const start = end - days * DAY_MS
      const width = (days * DAY_MS) / n
      const rows = yield* sql<{ at: Date; direction: string }>`
        SELECT c.occurred_at AS at, e.direction FROM episode_contacts c
        JOIN episodes e ON e.tenant_id = c.tenant_id AND e.id = c.episode_id
        WHERE c.tenant_id = ${tenant} AND c.contact_id = ${contactId}
          AND c.occurred_at > ${new Date(start)} AND c.occurred_at <= ${new Date(end)}`
      const buckets = Array.from({ length: n }, (_, i) => ({ start: new Date(start + i * width), interactions: 0, inbound: 0, engagement: 0 }))
      for (const r of rows) {
        const b = buckets[Math.min(n - 1, Math.floor((r.at.getTime() - start) / width))]!
        b.interactions++
        if (r.direction === "inbound") b.inbound++
        b.engagement = b.interactions + b.inbound
      }
      const mean = buckets.reduce((s, b) => s + b.engagement, 0) / n
      const xMean = (n - 1) / 2
      const den = buckets.reduce((s, _, i) => s + (i - xMean) ** 2, 0)
      const slope = den === 0 ? 0 : buckets.reduce((s, b, i) => s + (i - xMean) * (b.engagement - mean), 0) / den
      const direction: Trend["direction"] =
        rows.length === 0 ? "none" : slope > 0.1 * mean ? "rising" : slope < -0.1 * mean ? "falling" : "flat"
      return { days, buckets, slope, direction } satisfies Trend
    }, scoped("engagementTrend"))

    const lastMention = Effect.fn("EpisodicMemory.lastMention")(function* (
      tenant: TenantId,
      term: string,
      options: { readonly contactId?: ContactId } = {}
    ) {
      const normalized = normalizeTerm(term)
      if (normalized.length === 0) return Option.none<Episode>()
      const ofContact = options.contactId === undefined
        ? sql`TRUE`
        : sql`EXISTS (SELECT 1 FROM episode_contacts c WHERE c.tenant_id = ${tenant} AND c.episode_id = e.id AND c.contact_id = ${options.contactId})`
      const rows = yield* sql`
        WITH hits AS (
          (SELECT e.id, e.occurred_at FROM episodes e
           WHERE e.tenant_id = ${tenant} AND e.search @@ phraseto_tsquery('english', ${term}) AND ${ofContact}
           ORDER BY e.occurred_at DESC, e.id LIMIT 1)
          UNION ALL
          (SELECT m.episode_id, m.occurred_at FROM episode_mentions m JOIN episodes e ON e.tenant_id = m.tenant_id AND e.id = m.episode_id
           WHERE m.tenant_id = ${tenant} AND m.term = ${normalized} AND ${ofContact}
           ORDER BY m.occurred_at DESC, m.episode_id LIMIT 1)
        )
        SELECT ${cols} FROM hits h JOIN episodes e ON e.tenant_id = ${tenant} AND e.id = h.id
        ORDER BY e.occurred_at DESC, e.id LIMIT 1`
      return Option.fromNullable((yield* decodeEpisodes(rows))[0])
    }, scoped("lastMention"))

    // The statement of `openObjections` (`term` is there to order by).
    const openObjectionsStatement = (tenant: TenantId, contactId: Arg<ContactId>) => sql<ObjectionRow>`
        WITH m AS (
          SELECT m.term, m.label, m.kind, m.occurred_at, m.episode_id FROM episode_mentions m
          JOIN episode_contacts c ON c.tenant_id = m.tenant_id AND c.episode_id = m.episode_id AND c.contact_id = ${contactId}
          WHERE m.tenant_id = ${tenant} AND m.kind IN ('objection', 'objection-resolved')
        ),
        latest AS (
          -- in one episode a resolution outweighs a mention of the same objection
          SELECT DISTINCT ON (term) term, label, kind, occurred_at, episode_id FROM m ORDER BY term, occurred_at DESC, kind DESC
        )
        SELECT l.term, l.label, l.occurred_at AS last_raised, l.episode_id,
               (SELECT min(x.occurred_at) FROM m x WHERE x.term = l.term AND x.kind = 'objection') AS first_raised,
               (SELECT count(*)::int FROM m x WHERE x.term = l.term AND x.kind = 'objection') AS times
        FROM latest l WHERE l.kind = 'objection'
        ORDER BY l.occurred_at DESC, l.term`
    const objectionOf = (r: ObjectionRow): OpenObjection => ({
      topic: r.label,
      firstRaisedAt: r.first_raised,
      lastRaisedAt: r.last_raised,
      episodeId: r.episode_id,
      times: r.times
    })

    const openObjections = Effect.fn("EpisodicMemory.openObjections")(function* (tenant: TenantId, contactId: ContactId) {
      return (yield* openObjectionsStatement(tenant, contactId)).map(objectionOf)
    }, scoped("openObjections"))

    // JSON rows carry their timestamps as text (see `internal/JsonRows`); everything else as the driver gives it
    const reads: EpisodicMemoryShape["reads"] = {
      recall: (tenant, options) => ({
        json: JsonRows.rows(sql, recallStatement(tenant, options, options.asOf), sql`r.score DESC, r.occurred_at DESC, r.id`),
        decode: (json) =>
          recalledOf((json as ReadonlyArray<Record<string, unknown>>).map((r) => ({
            ...r,
            occurred_at: JsonRows.timestamp(r.occurred_at),
            duration_sec: JsonRows.float(r.duration_sec),
            relevance: JsonRows.float(r.relevance),
            recency: JsonRows.float(r.recency),
            score: JsonRows.float(r.score)
          })))
      }),
      openObjections: (tenant, contactId) => ({
        json: JsonRows.rows(sql, openObjectionsStatement(tenant, contactId), sql`r.last_raised DESC, r.term`),
        decode: (json) =>
          Effect.succeed((json as ReadonlyArray<ObjectionRow>).map((r) =>
            objectionOf({ ...r, first_raised: JsonRows.timestamp(r.first_raised) as Date, last_raised: JsonRows.timestamp(r.last_raised) as Date })
          ))
      })
    }

    return { record, get, recent, recall, engagementTrend, lastMention, openObjections, reads } satisfies EpisodicMemoryShape
  })

/** The memory with the given weights, over the `SqlClient` of a `Database` layer. */
export const layerWith = (settings: EpisodicSettings): Layer.Layer<EpisodicMemory, never, SqlClient.SqlClient> =>
  Layer.effect(EpisodicMemory, make(settings))

/** The memory with the weights of the environment. */
export const layer = Layer.unwrapEffect(Effect.map(config, layerWith))
