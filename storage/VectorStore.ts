/**
 * The vector port: per-tenant collections of unit vectors with a JSON payload, searched by
 * cosine similarity with payload filters and a score threshold. Two adapters behave the
 * same (one contract suite runs against both): `PgVectorStore` (embedded, exact search over
 * float32 vectors kept in Postgres) and `QdrantVectorStore`. Tenants never see each other's
 * points: every read and write is scoped to one tenant.
 *
 * Collections the knowledge store uses: `contacts` (one profile vector per contact) and
 * `conversations` (one vector per episode).
 */
import { Context, type Effect, type Option } from "effect"
import type { TenantId } from "../protocols/Ids.js"
import type { StorageError } from "./Errors.js"

/** A payload value: a scalar, or a list of strings or numbers (a filter matches any element). */
export type PayloadValue = string | number | boolean | null | ReadonlyArray<string | number>

/** A point's payload. Keys `tenant_id` and `point_id` are reserved by the adapters. */
export type Payload = Readonly<Record<string, PayloadValue>>

/** A stored point. */
export interface Point {
  readonly id: string
  readonly vector: Float32Array
  readonly payload: Payload
}

/** A filter value: one scalar, or a list of which any may match. */
export type FilterValue = string | number | boolean | ReadonlyArray<string | number | boolean>

/** Payload conditions: every `must` key matches, no `mustNot` key matches. */
export interface Filter {
  readonly must?: Readonly<Record<string, FilterValue>>
  readonly mustNot?: Readonly<Record<string, FilterValue>>
}

/** Options of a search. */
export interface SearchOptions {
  /** Most matches returned. Default 10. */
  readonly limit?: number
  /** Lowest cosine similarity returned (inclusive). Default: no threshold. */
  readonly minScore?: number
  readonly filter?: Filter
  /** Point ids never returned (e.g. the query's own point). */
  readonly excludeIds?: ReadonlyArray<string>
}

/** A search result: highest score first, ties by id. */
export interface Match {
  readonly id: string
  readonly score: number
  readonly payload: Payload
}

/** Similarity above which two contacts are taken for the same person. */
export const DUPLICATE_THRESHOLD = 0.95

/** Names of the collections the knowledge store uses. */
export const collections = { contacts: "contacts", conversations: "conversations" } as const

/** The vector store. */
export interface VectorStoreShape {
  /** Which adapter this is. */
  readonly backend: "postgres" | "qdrant"
  /** Creates the collection if missing; fails with `Invalid` if it exists with another dimension. */
  readonly ensureCollection: (collection: string, dimension: number) => Effect.Effect<void, StorageError>
  /** Inserts or replaces points (vectors are normalised); writing the same point again changes nothing. */
  readonly upsert: (tenant: TenantId, collection: string, points: ReadonlyArray<Point>) => Effect.Effect<void, StorageError>
  /** Removes points; ids that do not exist are ignored. */
  readonly remove: (tenant: TenantId, collection: string, ids: ReadonlyArray<string>) => Effect.Effect<void, StorageError>
  /** One point by id. */
  readonly get: (tenant: TenantId, collection: string, id: string) => Effect.Effect<Option.Option<Point>, StorageError>
  /** How many points the tenant has in the collection. */
  readonly count: (tenant: TenantId, collection: string) => Effect.Effect<number, StorageError>
  /** The points most similar to `vector` that pass the filter and threshold. */
  readonly search: (
    tenant: TenantId,
    collection: string,
    vector: Float32Array,
    options?: SearchOptions
  ) => Effect.Effect<ReadonlyArray<Match>, StorageError>
  /**
   * Points nearly identical to point `id` (similarity above `threshold`, default 0.95),
   * excluding itself; empty when `id` does not exist.
   */
  readonly nearDuplicates: (
    tenant: TenantId,
    collection: string,
    id: string,
    options?: { readonly threshold?: number; readonly limit?: number; readonly filter?: Filter }
  ) => Effect.Effect<ReadonlyArray<Match>, StorageError>
}

/** The vector store service (the abstract port). */
export class VectorStore extends Context.Tag("nexus/storage/VectorStore")<VectorStore, VectorStoreShape>() {}

/** Payload keys the adapters keep for themselves. */
export const reservedKeys: ReadonlySet<string> = new Set(["tenant_id", "point_id"])

const matchesOne = (actual: PayloadValue | undefined, wanted: FilterValue): boolean => {
  const options: ReadonlyArray<string | number | boolean> = Array.isArray(wanted) ? wanted : [wanted as string]
  if (actual === undefined || actual === null) return false
  if (Array.isArray(actual)) return actual.some((a) => options.includes(a))
  return options.includes(actual as string | number | boolean)
}

/** Whether a payload passes a filter (the embedded adapter's rule; Qdrant's match conditions agree). */
export const matches = (payload: Payload, filter: Filter | undefined): boolean => {
  if (filter === undefined) return true
  for (const [k, v] of Object.entries(filter.must ?? {})) if (!matchesOne(payload[k], v)) return false
  for (const [k, v] of Object.entries(filter.mustNot ?? {})) if (matchesOne(payload[k], v)) return false
  return true
}

/** Orders matches: score descending, then id ascending. */
export const byScore = (a: Match, b: Match): number => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
