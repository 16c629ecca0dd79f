/**
 * The Qdrant adapter of the vector port (`@qdrant/js-client-rest`). One Qdrant collection
 * per logical collection (`<prefix><name>`, cosine distance) holds every tenant's points:
 * each point carries `tenant_id` (a keyword index marked `is_tenant`, so Qdrant stores each
 * tenant's points together) and every read filters on it. Point ids are UUIDs derived from
 * (tenant, id), so one tenant can never address another's point; the caller's id travels
 * in `point_id`. Both keys are stripped from the payloads returned.
 */
import { QdrantClient, QdrantClientResourceExhaustedError, QdrantClientTimeoutError } from "@qdrant/js-client-rest"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import type { TenantId } from "../protocols/Ids.js"
import { normalize } from "./Embeddings.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import {
  byScore,
  DUPLICATE_THRESHOLD,
  type Filter,
  type FilterValue,
  type Payload,
  type Point,
  reservedKeys,
  type SearchOptions,
  VectorStore,
  type VectorStoreShape
} from "./VectorStore.js"

/** Settings of the Qdrant adapter. */
export interface QdrantSettings {
  /** `QDRANT_URL`, e.g. `http://localhost:6333`. */
  readonly url: string
  /** `QDRANT_API_KEY`, if the server wants one. */
  readonly apiKey: Option.Option<Redacted.Redacted>
  /** Prefix of Qdrant collection names (`QDRANT_COLLECTION_PREFIX`). Default `nexus_`. */
  readonly prefix: string
}

/** Reads the settings from the environment. */
export const config: Config.Config<QdrantSettings> = Config.all({
  url: Config.string("QDRANT_URL").pipe(Config.withDescription("Qdrant REST URL")),
  apiKey: Config.option(Config.redacted("QDRANT_API_KEY")),
  prefix: Config.string("QDRANT_COLLECTION_PREFIX").pipe(Config.withDefault("nexus_"))
})

/** The Qdrant adapter's own tag (the layer also provides `VectorStore`). */
export class QdrantVectorStore extends Context.Tag("nexus/storage/QdrantVectorStore")<QdrantVectorStore, VectorStoreShape>() {}

/** The Qdrant point id of (tenant, id): a UUID from a SHA-256 of both. */
export const pointId = (tenant: string, id: string): string => {
  const h = createHash("sha256").update(tenant).update("\u0000").update(id).digest("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

// Network failures (fetch's TypeError), timeouts, rate limits and 5xx may pass; other
// statuses are the request's fault.
const qdrantError = (operation: string) => (cause: unknown): StorageError => {
  const status = (cause as { status?: unknown }).status
  const message = `${operation}: ${cause instanceof Error ? cause.message : String(cause)}`
  const transient =
    cause instanceof TypeError ||
    cause instanceof QdrantClientTimeoutError ||
    cause instanceof QdrantClientResourceExhaustedError ||
    (typeof status === "number" && (status === 429 || status >= 500))
  if (transient) return Errors.make(operation, "Unavailable", message, cause)
  return Errors.make(operation, status === 400 || status === 404 || status === 422 ? "Invalid" : "Unknown", message, cause)
}

type Condition = Record<string, unknown>

const condition = (key: string, value: FilterValue): Condition =>
  Array.isArray(value)
    ? { should: (value as ReadonlyArray<string | number | boolean>).map((v) => ({ key, match: { value: v } })) }
    : { key, match: { value } }

/** The Qdrant filter of a tenant and a port filter. */
export const toQdrantFilter = (tenant: string, filter: Filter | undefined, excludePointIds: ReadonlyArray<string> = []) => {
  const must: Array<Condition> = [{ key: "tenant_id", match: { value: tenant } }]
  for (const [k, v] of Object.entries(filter?.must ?? {})) must.push(condition(k, v))
  const mustNot: Array<Condition> = Object.entries(filter?.mustNot ?? {}).map(([k, v]) => condition(k, v))
  if (excludePointIds.length > 0) mustNot.push({ has_id: [...excludePointIds] })
  return mustNot.length > 0 ? { must, must_not: mustNot } : { must }
}

const strip = (payload: Record<string, unknown> | null | undefined): Payload => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(payload ?? {})) if (!reservedKeys.has(k)) out[k] = v
  return out as Payload
}

/** Builds the adapter over a client. */
export const make = (client: QdrantClient, prefix: string): VectorStoreShape => {
  const dimensions = new Map<string, number>()
  const nameOf = (collection: string) => `${prefix}${collection}`
  const call = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: qdrantError(`QdrantVectorStore.${operation}`) })

  const dimensionOf = (collection: string) =>
    Effect.gen(function* () {
      const known = dimensions.get(collection)
      if (known !== undefined) return known
      const info = yield* call("collection", () => client.getCollection(nameOf(collection)))
      const vectors = info.config.params.vectors as { size?: number } | undefined
      if (vectors?.size === undefined) return yield* Effect.fail(Errors.invalid("QdrantVectorStore", `'${collection}' has no single vector`))
      dimensions.set(collection, vectors.size)
      return vectors.size
    })

  const checked = (collection: string, vector: Float32Array) =>
    Effect.flatMap(dimensionOf(collection), (d) =>
      vector.length === d
        ? Effect.succeed(Array.from(normalize(Float32Array.from(vector))))
        : Effect.fail(Errors.invalid("QdrantVectorStore", `vector of ${vector.length} for '${collection}' of dimension ${d}`))
    )

  const ensureCollection = Effect.fn("QdrantVectorStore.ensureCollection")(function* (collection: string, dimension: number) {
    const name = nameOf(collection)
    const { exists } = yield* call("collectionExists", () => client.collectionExists(name))
    if (!exists) {
      // a concurrent creator may win the race: its collection is as good as ours
      yield* call("createCollection", () => client.createCollection(name, { vectors: { size: dimension, distance: "Cosine" } })).pipe(
        Effect.catchAll((e) => call("collectionExists", () => client.collectionExists(name)).pipe(
          Effect.flatMap((r) => (r.exists ? Effect.void : Effect.fail(e)))
        ))
      )
      yield* call("createPayloadIndex", () =>
        client.createPayloadIndex(name, { field_name: "tenant_id", field_schema: { type: "keyword", is_tenant: true }, wait: true })
      )
    }
    dimensions.delete(collection)
    const d = yield* dimensionOf(collection)
    if (d !== dimension) {
      return yield* Effect.fail(Errors.invalid("QdrantVectorStore.ensureCollection", `'${collection}' exists with dimension ${d}, not ${dimension}`))
    }
  })

  const upsert = Effect.fn("QdrantVectorStore.upsert")(function* (tenant: TenantId, collection: string, points: ReadonlyArray<Point>) {
    const latest = new Map<string, Point>()
    for (const p of points) {
      const bad = Object.keys(p.payload).find((k) => reservedKeys.has(k))
      if (bad !== undefined) return yield* Effect.fail(Errors.invalid("QdrantVectorStore.upsert", `payload key '${bad}' is reserved`))
      latest.set(p.id, p)
    }
    const all = [...latest.values()]
    for (let i = 0; i < all.length; i += 256) {
      const batch: Array<{ id: string; vector: Array<number>; payload: Record<string, unknown> }> = []
      for (const p of all.slice(i, i + 256)) {
        batch.push({ id: pointId(tenant, p.id), vector: yield* checked(collection, p.vector), payload: { ...p.payload, tenant_id: tenant, point_id: p.id } })
      }
      yield* call("upsert", () => client.upsert(nameOf(collection), { wait: true, points: batch }))
    }
  })

  const remove = Effect.fn("QdrantVectorStore.remove")(function* (tenant: TenantId, collection: string, ids: ReadonlyArray<string>) {
    if (ids.length === 0) return
    yield* call("delete", () => client.delete(nameOf(collection), { wait: true, points: ids.map((id) => pointId(tenant, id)) }))
  })

  const get = Effect.fn("QdrantVectorStore.get")(function* (tenant: TenantId, collection: string, id: string) {
    const found = yield* call("retrieve", () =>
      client.retrieve(nameOf(collection), { ids: [pointId(tenant, id)], with_payload: true, with_vector: true })
    )
    const record = found.find((r) => (r.payload as Record<string, unknown> | null)?.tenant_id === tenant)
    if (record === undefined || !Array.isArray(record.vector)) return Option.none<Point>()
    return Option.some<Point>({ id, vector: Float32Array.from(record.vector as Array<number>), payload: strip(record.payload) })
  })

  const count = Effect.fn("QdrantVectorStore.count")(function* (tenant: TenantId, collection: string) {
    const r = yield* call("count", () => client.count(nameOf(collection), { filter: toQdrantFilter(tenant, undefined) as never, exact: true }))
    return r.count
  })

  const search = Effect.fn("QdrantVectorStore.search")(
    function* (tenant: TenantId, collection: string, vector: Float32Array, options: SearchOptions = {}) {
      const limit = Math.max(0, Math.floor(options.limit ?? 10))
      const query = yield* checked(collection, vector)
      if (limit === 0) return []
      const filter = toQdrantFilter(tenant, options.filter, (options.excludeIds ?? []).map((id) => pointId(tenant, id)))
      const r = yield* call("query", () =>
        client.query(nameOf(collection), {
          query,
          filter: filter as never,
          limit,
          with_payload: true,
          ...(options.minScore !== undefined ? { score_threshold: options.minScore } : {})
        })
      )
      return r.points
        .map((p) => ({ id: String((p.payload as Record<string, unknown> | null)?.point_id ?? p.id), score: p.score, payload: strip(p.payload) }))
        .sort(byScore)
    }
  )

  const nearDuplicates = Effect.fn("QdrantVectorStore.nearDuplicates")(function* (
    tenant: TenantId,
    collection: string,
    id: string,
    options: { readonly threshold?: number; readonly limit?: number; readonly filter?: Filter } = {}
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

  return { backend: "qdrant", ensureCollection, upsert, remove, get, count, search, nearDuplicates }
}

/** The Qdrant adapter with the given settings; provides `QdrantVectorStore` and `VectorStore`. */
export const layerWith = (settings: QdrantSettings): Layer.Layer<QdrantVectorStore | VectorStore> =>
  Layer.sync(QdrantVectorStore, () =>
    make(
      new QdrantClient({
        url: settings.url,
        ...(Option.isSome(settings.apiKey) ? { apiKey: Redacted.value(settings.apiKey.value) } : {}),
        checkCompatibility: false
      }),
      settings.prefix
    )
  ).pipe(Layer.flatMap((ctx) => Layer.succeedContext(Context.add(ctx, VectorStore, Context.get(ctx, QdrantVectorStore)))))

/** The Qdrant adapter configured by the environment (`QDRANT_URL`, `QDRANT_API_KEY`, `QDRANT_COLLECTION_PREFIX`). */
export const layer = Layer.unwrapEffect(Effect.map(config, layerWith))
