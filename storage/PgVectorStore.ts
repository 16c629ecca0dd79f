/**
 * The embedded vector store: exact cosine search over vectors kept in Postgres (PGlite or a
 * server; no pgvector needed). Vectors are stored as float32 `bytea`; each write bumps the
 * (tenant, collection) revision under a row lock, so writes commit in revision order and an
 * in-process index can catch up by reading only the rows above the revision it has. A
 * caller that reads several things in one statement (context assembly) can read those rows
 * with them (`reads.changes`) and search the index caught up without another round trip
 * (`searcherAt`); a collection never written is then not searched at all.
 *
 * Memory is bounded (`NEXUS_VECTOR_CACHE_MB`, default 512): indexes are evicted least
 * recently used first, and a collection too large for the budget is searched by streaming
 * its rows in pages instead, keeping only the top matches.
 */
import { SqlClient, type Statement } from "@effect/sql"
import { Config, Context, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import * as Decoder from "../protocols/Decoder.js"
import type { TenantId } from "../protocols/Ids.js"
import { normalize } from "./Embeddings.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as JsonRows from "./internal/JsonRows.js"
import type { Arg, JsonRead } from "./internal/JsonRows.js"
import { consider, dotAt, fromBytes, type Query, toBytes, TopK, VectorIndex } from "./internal/VectorIndex.js"
import * as Tenancy from "./Tenancy.js"
import {
  byScore,
  DUPLICATE_THRESHOLD,
  type Match,
  type Payload,
  type Point,
  reservedKeys,
  type SearchOptions,
  VectorStore,
  type VectorStoreShape
} from "./VectorStore.js"

/** Settings of the embedded store. */
export interface PgVectorSettings {
  /** Memory the in-process indexes may hold, in bytes. Default 512 MiB (`NEXUS_VECTOR_CACHE_MB`). */
  readonly cacheBytes: number
  /** Rows read per page when loading or streaming. Default 2000. */
  readonly pageSize: number
}

/** Reads the settings from the environment. */
export const config: Config.Config<PgVectorSettings> = Config.all({
  cacheBytes: Config.integer("NEXUS_VECTOR_CACHE_MB").pipe(
    Config.withDefault(512),
    Config.withDescription("Memory for in-process vector indexes, MiB"),
    Config.map((mb) => mb * 1024 * 1024)
  ),
  pageSize: Config.succeed(2000)
})

/** A search of one collection: the query vector and the options of `search`. */
export type Searcher = (vector: Float32Array, options?: SearchOptions) => Effect.Effect<ReadonlyArray<Match>, StorageError>

/**
 * What a collection of a tenant was like in one statement's snapshot, for the cached index of
 * this process: the collection's revision (0: never written) and, when an index was cached
 * then, the rows above its revision (at most `CHANGES_LIMIT` of them).
 */
export interface Changes {
  readonly head: number
  readonly since: { readonly index: VectorIndex; readonly rows: ReadonlyArray<typeof Row.Type> } | null
}

/** The embedded store: the port, and its reads for callers that combine them into one statement. */
export interface PgVectorStoreShape extends VectorStoreShape {
  /** Reads to be sent inside another statement, in a tenant scope the caller opens (see `internal/JsonRows`). */
  readonly reads: {
    /** What `get` reads. */
    readonly get: (tenant: TenantId, collection: string, id: Arg<string>) => JsonRead<Option.Option<Point>, ParseResult.ParseError>
    /** The changes of a collection since its cached index (see `searcherAt`). */
    readonly changes: (tenant: TenantId, collection: string) => JsonRead<Changes, ParseResult.ParseError>
  }
  /**
   * How to search a collection, given its `changes` read in a committed snapshot (a
   * transaction of the caller's that has written nothing: no uncommitted row may reach the
   * shared index): none when the collection had no points then, so no search can match;
   * else a search of the index caught up with those changes, without reading Postgres again,
   * or, when the changes cannot catch it up (no index cached, too many of them), `search`.
   */
  readonly searcherAt: (tenant: TenantId, collection: string, changes: Changes) => Effect.Effect<Option.Option<Searcher>, StorageError>
}

/** The embedded store's own tag (the layer also provides `VectorStore`). */
export class PgVectorStore extends Context.Tag("nexus/storage/PgVectorStore")<PgVectorStore, PgVectorStoreShape>() {}

const Row = Schema.Struct({ id: Schema.String, rev: Schema.Number, vector: Schema.NullOr(Schema.Uint8ArrayFromSelf), payload: Schema.Unknown })
const decodeRows = Decoder.effect(Schema.Array(Row))
// a JSON row carries its vector as the text of a bytea
const decodeJsonRows = (json: unknown) =>
  decodeRows((json as ReadonlyArray<Record<string, unknown>>).map((r) => ({ ...r, vector: JsonRows.bytes(r.vector) })))

// Most rows a `changes` read carries. Every reader that read the same stale revision carries
// the same rows, so a long backlog is left to `search`, which catches up once, under the lock.
const CHANGES_LIMIT = 100

interface Entry {
  readonly index: VectorIndex
  readonly lock: Effect.Semaphore
  used: number
}

/** Builds the embedded store over a SQL client. */
export const make = (settings: PgVectorSettings): Effect.Effect<PgVectorStoreShape, never, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const dimensions = new Map<string, number>()
    const entries = new Map<string, Entry>()
    const tooLarge = new Map<string, number>() // key → until when (ms) it is streamed instead
    let clock = 0

    const fail = (operation: string) => Effect.mapError(Errors.refine(`PgVectorStore.${operation}`))

    const dimensionOf = (collection: string) =>
      Effect.gen(function* () {
        const known = dimensions.get(collection)
        if (known !== undefined) return known
        const rows = yield* sql<{ dimension: number }>`SELECT dimension FROM vector_collections WHERE name = ${collection}`
        const d = rows[0]?.dimension
        if (d === undefined) return yield* Effect.fail(Errors.invalid("PgVectorStore", `no collection '${collection}'`))
        dimensions.set(collection, d)
        return d
      })

    const checked = (collection: string, vector: Float32Array) =>
      Effect.flatMap(dimensionOf(collection), (d) =>
        vector.length === d
          ? Effect.succeed(normalize(Float32Array.from(vector)))
          : Effect.fail(Errors.invalid("PgVectorStore", `vector of ${vector.length} for '${collection}' of dimension ${d}`))
      )

    // Locks the collection's revision row; returns the revision the next write gets.
    const nextRev = (tenant: TenantId, collection: string) =>
      Effect.gen(function* () {
        yield* sql`INSERT INTO vector_heads (tenant_id, collection, rev) VALUES (${tenant}, ${collection}, 0) ON CONFLICT DO NOTHING`
        const rows = yield* sql<{ rev: number }>`
          SELECT rev::float8 AS rev FROM vector_heads WHERE tenant_id = ${tenant} AND collection = ${collection} FOR UPDATE`
        return (rows[0]?.rev ?? 0) + 1
      })
    const bump = (tenant: TenantId, collection: string, rev: number) =>
      sql`UPDATE vector_heads SET rev = ${rev} WHERE tenant_id = ${tenant} AND collection = ${collection}`

    const ensureCollection = Effect.fn("PgVectorStore.ensureCollection")(function* (collection: string, dimension: number) {
      if (!Number.isInteger(dimension) || dimension <= 0) {
        return yield* Effect.fail(Errors.invalid("PgVectorStore.ensureCollection", `bad dimension ${dimension}`))
      }
      yield* sql`INSERT INTO vector_collections (name, dimension) VALUES (${collection}, ${dimension}) ON CONFLICT DO NOTHING`
      dimensions.delete(collection)
      const d = yield* dimensionOf(collection)
      if (d !== dimension) {
        return yield* Effect.fail(
          Errors.invalid("PgVectorStore.ensureCollection", `'${collection}' exists with dimension ${d}, not ${dimension}`)
        )
      }
    }, fail("ensureCollection"))

    const upsert = Effect.fn("PgVectorStore.upsert")(function* (tenant: TenantId, collection: string, points: ReadonlyArray<Point>) {
      const latest = new Map<string, Point>()
      for (const p of points) {
        const bad = Object.keys(p.payload).find((k) => reservedKeys.has(k))
        if (bad !== undefined) return yield* Effect.fail(Errors.invalid("PgVectorStore.upsert", `payload key '${bad}' is reserved`))
        latest.set(p.id, p)
      }
      if (latest.size === 0) return
      const rows: Array<{ id: string; vector: Buffer; payload: string }> = []
      for (const p of latest.values()) {
        rows.push({ id: p.id, vector: toBytes(yield* checked(collection, p.vector)), payload: JSON.stringify(p.payload) })
      }
      yield* Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          const rev = yield* nextRev(tenant, collection)
          let changed = 0
          for (let i = 0; i < rows.length; i += 500) {
            const batch = rows.slice(i, i + 500).map((r) => ({ tenant_id: tenant, collection, rev, ...r }))
            const written = yield* sql`
              INSERT INTO vector_points ${sql.insert(batch)}
              ON CONFLICT (tenant_id, collection, id) DO UPDATE SET
                rev = EXCLUDED.rev, vector = EXCLUDED.vector, payload = EXCLUDED.payload, updated_at = now()
              WHERE vector_points.vector IS DISTINCT FROM EXCLUDED.vector
                 OR vector_points.payload IS DISTINCT FROM EXCLUDED.payload
              RETURNING id`
            changed += written.length
          }
          if (changed > 0) yield* bump(tenant, collection, rev)
        })
      )
    }, fail("upsert"))

    const remove = Effect.fn("PgVectorStore.remove")(function* (tenant: TenantId, collection: string, ids: ReadonlyArray<string>) {
      if (ids.length === 0) return
      yield* Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          const rev = yield* nextRev(tenant, collection)
          const gone = yield* sql`
            UPDATE vector_points SET vector = NULL, payload = '{}', rev = ${rev}, updated_at = now()
            WHERE tenant_id = ${tenant} AND collection = ${collection} AND ${sql.in("id", ids)} AND vector IS NOT NULL
            RETURNING id`
          if (gone.length > 0) yield* bump(tenant, collection, rev)
        })
      )
    }, fail("remove"))

    const pointStatement = (tenant: TenantId, collection: string, id: Arg<string>) => sql`
      SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
      WHERE tenant_id = ${tenant} AND collection = ${collection} AND id = ${id} AND vector IS NOT NULL`
    const pointOf = (rows: ReadonlyArray<typeof Row.Type>) =>
      Option.map(Option.fromNullable(rows[0]), (r): Point => ({
        id: r.id,
        vector: fromBytes(r.vector!),
        payload: r.payload as Payload
      }))

    const get = Effect.fn("PgVectorStore.get")(function* (tenant: TenantId, collection: string, id: string) {
      return pointOf(yield* decodeRows(yield* Tenancy.within(sql, tenant)(pointStatement(tenant, collection, id))))
    }, fail("get"))

    const count = Effect.fn("PgVectorStore.count")(function* (tenant: TenantId, collection: string) {
      const rows = yield* Tenancy.within(sql, tenant)(sql<{ n: number }>`
        SELECT count(*)::int AS n FROM vector_points
        WHERE tenant_id = ${tenant} AND collection = ${collection} AND vector IS NOT NULL`)
      return rows[0]?.n ?? 0
    }, fail("count"))

    // Applies every row above the index's revision, page by page (in revision order).
    const refresh = (tenant: TenantId, collection: string, index: VectorIndex) =>
      Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          // every row of the index's own revision is in it already (a revision commits whole)
          let after: { rev: number; id: string } | null = null
          while (true) {
            const above: Statement.Fragment = after === null
              ? sql`rev > ${index.rev}`
              : sql`(rev, id) > (${after.rev}, ${after.id}::text COLLATE "C")`
            const rows: ReadonlyArray<typeof Row.Type> = yield* decodeRows(yield* sql`
              SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
              WHERE tenant_id = ${tenant} AND collection = ${collection} AND ${above}
              ORDER BY rev, id LIMIT ${settings.pageSize}`)
            for (const r of rows) index.apply(r.id, r.vector === null ? null : fromBytes(r.vector), r.payload as Payload, r.rev)
            const last = rows[rows.length - 1]
            if (last === undefined || rows.length < settings.pageSize) return
            after = { rev: last.rev, id: last.id }
          }
        })
      )

    // First load: every live row up to the current revision, in primary-key order; rows
    // written meanwhile carry a later revision and come with the next refresh.
    const load = (tenant: TenantId, collection: string, index: VectorIndex) =>
      Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          const head = (yield* sql<{ rev: number }>`
            SELECT rev::float8 AS rev FROM vector_heads WHERE tenant_id = ${tenant} AND collection = ${collection}`)[0]?.rev ?? 0
          let after = ""
          while (true) {
            const rows: ReadonlyArray<typeof Row.Type> = yield* decodeRows(yield* sql`
              SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
              WHERE tenant_id = ${tenant} AND collection = ${collection} AND id > ${after}
                AND rev <= ${head} AND vector IS NOT NULL
              ORDER BY id LIMIT ${settings.pageSize}`)
            for (const r of rows) index.apply(r.id, fromBytes(r.vector!), r.payload as Payload, r.rev)
            if (rows.length < settings.pageSize) break
            after = rows[rows.length - 1]!.id
          }
          index.rev = head
        })
      )

    const cachedBytes = () => [...entries.values()].reduce((n, e) => n + e.index.bytes, 0)

    // The index of a collection, caught up; none when the collection does not fit the budget.
    const indexFor = (tenant: TenantId, collection: string, dimension: number) =>
      Effect.gen(function* () {
        const key = `${tenant}\u0000${collection}`
        if ((tooLarge.get(key) ?? 0) > Date.now()) return Option.none<VectorIndex>()
        let entry = entries.get(key)
        if (entry === undefined) {
          const n = yield* count(tenant, collection)
          const need = n * (dimension * 4 + 256)
          if (need > settings.cacheBytes) {
            tooLarge.set(key, Date.now() + 60_000)
            return Option.none<VectorIndex>()
          }
          // evict least recently used indexes until the new one fits
          const byAge = [...entries.entries()].sort((a, b) => a[1].used - b[1].used)
          while (byAge.length > 0 && cachedBytes() + need > settings.cacheBytes) entries.delete(byAge.shift()![0])
          const fresh = new VectorIndex(dimension)
          yield* load(tenant, collection, fresh)
          entry = { index: fresh, lock: yield* Effect.makeSemaphore(1), used: 0 }
          entries.set(key, entry)
        }
        entry.used = ++clock
        const e = entry
        yield* e.lock.withPermits(1)(refresh(tenant, collection, e.index))
        return Option.some(e.index)
      })

    // Too large to keep: read every live row page by page, keeping the top matches.
    const stream = (tenant: TenantId, collection: string, q: Query) =>
      Tenancy.within(sql, tenant)(
        Effect.gen(function* () {
          const top = new TopK(q.limit)
          let after = ""
          while (true) {
            const rows = yield* decodeRows(yield* sql`
              SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
              WHERE tenant_id = ${tenant} AND collection = ${collection} AND vector IS NOT NULL AND id > ${after}
              ORDER BY id LIMIT ${settings.pageSize}`)
            for (const r of rows) consider(top, q, r.id, dotAt(fromBytes(r.vector!), 0, q.vector), r.payload as Payload)
            if (rows.length < settings.pageSize) return top.result()
            after = rows[rows.length - 1]!.id
          }
        })
      )

    const queryOf = (collection: string, vector: Float32Array, options: SearchOptions) =>
      Effect.map(checked(collection, vector), (normalized): Query => ({
        vector: normalized,
        limit: Math.max(0, Math.floor(options.limit ?? 10)),
        minScore: options.minScore ?? Number.NEGATIVE_INFINITY,
        filter: options.filter,
        exclude: new Set(options.excludeIds ?? [])
      }))

    const search = Effect.fn("PgVectorStore.search")(
      function* (tenant: TenantId, collection: string, vector: Float32Array, options: SearchOptions = {}) {
        const q = yield* queryOf(collection, vector, options)
        if (q.limit === 0) return []
        // Inside a tenant transaction this connection sees its own uncommitted writes, which
        // must never reach the shared index: search the index as it is, and overlay the rows
        // this transaction sees above its revision (scored here, not applied).
        if (Option.isSome(yield* Tenancy.currentTenant)) {
          const key = `${tenant}\u0000${collection}`
          const entry = entries.get(key)
          if (entry === undefined) return [...(yield* stream(tenant, collection, q))].sort(byScore)
          const newer = yield* decodeRows(yield* sql`
            SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
            WHERE tenant_id = ${tenant} AND collection = ${collection} AND rev > ${entry.index.rev}`)
          const top = new TopK(q.limit)
          const shadowed = new Set([...q.exclude, ...newer.map((r) => r.id)])
          for (const m of entry.index.search({ ...q, exclude: shadowed })) top.offer(m.id, m.score, () => m.payload)
          for (const r of newer) {
            if (r.vector !== null) consider(top, q, r.id, dotAt(fromBytes(r.vector), 0, q.vector), r.payload as Payload)
          }
          return [...top.result()].sort(byScore)
        }
        const index = yield* indexFor(tenant, collection, q.vector.length)
        const found = Option.isSome(index) ? index.value.search(q) : yield* stream(tenant, collection, q)
        return [...found].sort(byScore)
      },
      fail("search")
    )

    const nearDuplicates = Effect.fn("PgVectorStore.nearDuplicates")(function* (
      tenant: TenantId,
      collection: string,
      id: string,
      options: { readonly threshold?: number; readonly limit?: number; readonly filter?: SearchOptions["filter"] } = {}
    ) {
      const point = yield* get(tenant, collection, id)
      if (Option.isNone(point)) return []
      return yield* search(tenant, collection, point.value.vector, {
        limit: options.limit ?? 10,
        minScore: options.threshold ?? DUPLICATE_THRESHOLD,
        excludeIds: [id],
        ...(options.filter ? { filter: options.filter } : {})
      })
    })

    const changesLimit = Math.min(settings.pageSize, CHANGES_LIMIT)
    const reads: PgVectorStoreShape["reads"] = {
      get: (tenant, collection, id) => ({
        json: JsonRows.row(sql, pointStatement(tenant, collection, id)),
        decode: (json) => Effect.map(decodeJsonRows(json === null ? [] : [json]), pointOf)
      }),
      // the first rows `refresh` would read; none when no index is cached (the first search loads it)
      changes: (tenant, collection) => {
        const index = entries.get(`${tenant}\u0000${collection}`)?.index
        const head = sql`(SELECT rev::float8 FROM vector_heads WHERE tenant_id = ${tenant} AND collection = ${collection})`
        if (index === undefined) {
          return { json: sql`json_build_object('head', ${head})`, decode: (json) => Effect.succeed({ head: headOf(json), since: null }) }
        }
        const rows = JsonRows.rows(sql, sql`
          SELECT id, rev::float8 AS rev, vector, payload FROM vector_points
          WHERE tenant_id = ${tenant} AND collection = ${collection} AND rev > ${index.rev}
          ORDER BY rev, id LIMIT ${changesLimit}`, sql`r.rev, r.id`)
        return {
          json: sql`json_build_object('head', ${head}, 'rows', ${rows})`,
          decode: (json) =>
            Effect.map(decodeJsonRows((json as { rows: unknown }).rows), (rows) => ({ head: headOf(json), since: { index, rows } }))
        }
      }
    }
    const headOf = (json: unknown) => (json as { head: number | null }).head ?? 0

    // untraced: it runs for every assembly and rarely reads anything (`search` has its span)
    const searcherAt = Effect.fnUntraced(function* (tenant: TenantId, collection: string, changes: Changes) {
      // every write bumps the revision, so a collection at revision 0 has never held a point
      if (changes.head === 0) return Option.none<Searcher>()
      const fallback = Option.some<Searcher>((vector, options) => search(tenant, collection, vector, options))
      const entry = entries.get(`${tenant}\u0000${collection}`)
      const since = changes.since
      // the index evicted or replaced since, or only the first of the changes: as `search` does
      if (entry === undefined || since === null || since.index !== entry.index || since.rows.length >= changesLimit) return fallback
      entry.used = ++clock
      // Under the index's lock, as `refresh` applies its pages. The rows are every row above the
      // revision the index had when they were read; what the index took meanwhile from a later
      // refresh is newer than them, so only the rows above its revision now are applied.
      yield* entry.lock.withPermits(1)(Effect.sync(() => {
        const from = entry.index.rev
        for (const r of since.rows) {
          if (r.rev > from) entry.index.apply(r.id, r.vector === null ? null : fromBytes(r.vector), r.payload as Payload, r.rev)
        }
      }))
      const index = entry.index
      if (index.size === 0) return Option.none<Searcher>()
      return Option.some<Searcher>((vector, options = {}) =>
        Effect.map(queryOf(collection, vector, options), (q) => (q.limit === 0 ? [] : [...index.search(q)].sort(byScore))).pipe(
          fail("search")
        ))
    }, fail("searcherAt"))

    return {
      backend: "postgres", ensureCollection, upsert, remove, get, count, search, nearDuplicates, reads, searcherAt
    } satisfies PgVectorStoreShape
  })

/** The embedded store with the given settings; provides `PgVectorStore` and `VectorStore`. */
export const layerWith = (settings: PgVectorSettings): Layer.Layer<PgVectorStore | VectorStore, never, SqlClient.SqlClient> =>
  Layer.effectContext(
    Effect.map(make(settings), (store) => Context.make(PgVectorStore, store).pipe(Context.add(VectorStore, store)))
  )

/** The embedded store configured by the environment. */
export const layer = Layer.unwrapEffect(Effect.map(config, layerWith))
