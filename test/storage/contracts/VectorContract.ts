/**
 * The contract of the vector port, run against every adapter (embedded on Postgres and
 * PGlite, Qdrant when `QDRANT_URL` is set). Each test uses fresh tenants and collection
 * names, so runs may share a server.
 */
import { expect, type Vitest } from "@effect/vitest"
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import { TenantId } from "../../../protocols/Ids.js"
import { normalize } from "../../../storage/Embeddings.js"
import { type Point, VectorStore } from "../../../storage/VectorStore.js"

const DIM = 16
const fresh = (tag: string) => `${tag}_${randomBytes(5).toString("hex")}`

/** A deterministic unit vector from a seed. */
export const vectorOf = (seed: number, dim = DIM): Float32Array => {
  let s = seed >>> 0
  const v = new Float32Array(dim)
  for (let i = 0; i < dim; i++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    v[i] = (s / 4294967296) * 2 - 1
  }
  return normalize(v)
}

/** `v` moved a little towards `w` (still very similar to `v`). */
const nudge = (v: Float32Array, w: Float32Array, by: number) => normalize(v.map((x, i) => x + by * w[i]!))

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0)

const points: ReadonlyArray<Point> = Array.from({ length: 40 }, (_, i) => ({
  id: `p-${String(i).padStart(2, "0")}`,
  vector: vectorOf(i + 1),
  payload: { segment: i % 3 === 0 ? "enterprise" : "smb", score: i, tags: i % 2 === 0 ? ["even", "any"] : ["odd", "any"] }
}))

const setup = Effect.gen(function* () {
  const store = yield* VectorStore
  const tenant = TenantId.make(fresh("vec"))
  const collection = fresh("c")
  yield* store.ensureCollection(collection, DIM)
  yield* store.upsert(tenant, collection, points)
  return { store, tenant, collection }
})

/** The exact answer a search must give: cosine over `points`, filtered, best first. */
const expected = (q: Float32Array, keep: (p: Point) => boolean, limit: number) =>
  points
    .filter(keep)
    .map((p) => ({ id: p.id, score: cosine(p.vector, q) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
    .slice(0, limit)

/** Registers the contract's tests on `it` (whose environment provides a `VectorStore`). */
export const vectorContract = (it: Vitest.MethodsNonLive<VectorStore, true>) => {
  it.effect("searches exactly by cosine, with limit, threshold, filters and exclusions", () =>
    Effect.gen(function* () {
      const { store, tenant, collection } = yield* setup
      expect(yield* store.count(tenant, collection)).toBe(points.length)
      const q = vectorOf(5)
      const top = yield* store.search(tenant, collection, q, { limit: 5 })
      const want = expected(q, () => true, 5)
      expect(top.map((m) => m.id)).toEqual(want.map((w) => w.id))
      top.forEach((m, i) => expect(m.score).toBeCloseTo(want[i]!.score, 5))
      expect(top[0]!.id).toBe("p-04")
      expect(top[0]!.payload).toEqual(points[4]!.payload)

      const above = yield* store.search(tenant, collection, q, { limit: 40, minScore: 0.2 })
      expect(above.map((m) => m.id)).toEqual(expected(q, () => true, 40).filter((w) => w.score >= 0.2).map((w) => w.id))

      const filtered = yield* store.search(tenant, collection, q, {
        limit: 10,
        filter: { must: { segment: "enterprise", tags: ["even"] }, mustNot: { score: [0, 6] } },
        excludeIds: ["p-12"]
      })
      const keep = (p: Point) => p.payload.segment === "enterprise" && (p.payload.tags as Array<string>).includes("even") &&
        p.payload.score !== 0 && p.payload.score !== 6 && p.id !== "p-12"
      expect(filtered.map((m) => m.id)).toEqual(expected(q, keep, 10).map((w) => w.id))
      expect(filtered.length).toBeGreaterThan(0)
    }))

  it.effect("upserts idempotently, replaces, removes, and reads points back", () =>
    Effect.gen(function* () {
      const { store, tenant, collection } = yield* setup
      yield* store.upsert(tenant, collection, points.slice(0, 10)) // the same again
      expect(yield* store.count(tenant, collection)).toBe(points.length)
      const got = Option.getOrThrow(yield* store.get(tenant, collection, "p-03"))
      expect(cosine(got.vector, points[3]!.vector)).toBeCloseTo(1, 5)
      expect(got.payload).toEqual(points[3]!.payload)

      // a search sees writes made after it first loaded the collection
      const q = vectorOf(999)
      expect((yield* store.search(tenant, collection, q, { limit: 1 }))[0]!.id).not.toBe("p-07")
      yield* store.upsert(tenant, collection, [{ id: "p-07", vector: q, payload: { segment: "moved", score: 7, tags: [] } }])
      const moved = (yield* store.search(tenant, collection, q, { limit: 1 }))[0]!
      expect(moved.id).toBe("p-07")
      expect(moved.score).toBeCloseTo(1, 5)
      expect(moved.payload.segment).toBe("moved")

      yield* store.remove(tenant, collection, ["p-07", "p-08", "no-such-point"])
      expect(yield* store.count(tenant, collection)).toBe(points.length - 2)
      expect(yield* store.get(tenant, collection, "p-07")).toEqual(Option.none())
      expect((yield* store.search(tenant, collection, q, { limit: 40 })).some((m) => m.id === "p-07" || m.id === "p-08")).toBe(false)
    }))

  it.effect("detects near-duplicates above 0.95 and nothing else", () =>
    Effect.gen(function* () {
      const { store, tenant, collection } = yield* setup
      const base = vectorOf(4242)
      const twin = nudge(base, vectorOf(77), 0.05)
      expect(cosine(base, twin)).toBeGreaterThan(0.95)
      const cousin = nudge(base, vectorOf(78), 0.6)
      expect(cosine(base, cousin)).toBeLessThan(0.95)
      yield* store.upsert(tenant, collection, [
        { id: "ava", vector: base, payload: { name: "Ava Smith" } },
        { id: "ava-dup", vector: twin, payload: { name: "Ava Smith (import)" } },
        { id: "ava-cousin", vector: cousin, payload: { name: "Eva Smythe" } }
      ])
      const dups = yield* store.nearDuplicates(tenant, collection, "ava")
      expect(dups.map((d) => d.id)).toEqual(["ava-dup"])
      expect(dups[0]!.score).toBeGreaterThan(0.95)
      expect(yield* store.nearDuplicates(tenant, collection, "no-such-point")).toEqual([])
    }))

  it.effect("keeps tenants apart and rejects bad input", () =>
    Effect.gen(function* () {
      const { store, tenant, collection } = yield* setup
      const other = TenantId.make(fresh("vec-other"))
      expect(yield* store.count(other, collection)).toBe(0)
      expect(yield* store.search(other, collection, vectorOf(5), { limit: 5 })).toEqual([])
      expect(yield* store.get(other, collection, "p-01")).toEqual(Option.none())
      yield* store.upsert(other, collection, [{ id: "p-01", vector: vectorOf(5), payload: { segment: "other" } }])
      yield* store.remove(other, collection, ["p-02"])
      expect(Option.getOrThrow(yield* store.get(tenant, collection, "p-01")).payload).toEqual(points[1]!.payload)
      expect(yield* store.count(tenant, collection)).toBe(points.length)

      const wrongDim = yield* store.search(tenant, collection, vectorOf(1, DIM + 1)).pipe(Effect.flip)
      expect(wrongDim.reason).toBe("Invalid")
      const reserved = yield* store.upsert(tenant, collection, [{ id: "x", vector: vectorOf(1), payload: { tenant_id: "evil" } }]).pipe(Effect.flip)
      expect(reserved.reason).toBe("Invalid")
      const redefined = yield* store.ensureCollection(collection, DIM * 2).pipe(Effect.flip)
      expect(redefined.reason).toBe("Invalid")
      yield* store.ensureCollection(collection, DIM) // same definition: fine
    }))
}
