/**
 * The vector port contract against the embedded adapter on a real Postgres server, and
 * against Qdrant when `QDRANT_URL` is set (skipped otherwise, saying so). The embedded
 * adapter on PGlite runs the same contract in `Embedded.test.ts`; its bounded-memory path
 * (a collection larger than the cache budget, searched by streaming) is checked here too.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import * as PgVectorStore from "../../storage/PgVectorStore.js"
import * as QdrantVectorStore from "../../storage/QdrantVectorStore.js"
import * as Tenancy from "../../storage/Tenancy.js"
import { VectorStore } from "../../storage/VectorStore.js"
import * as Postgres from "../fixtures/Postgres.js"
import { vectorContract, vectorOf } from "./contracts/VectorContract.js"

const db = Postgres.layerFresh

layer(PgVectorStore.layerWith({ cacheBytes: 64 * 1024 * 1024, pageSize: 7 }).pipe(Layer.provideMerge(db)), { excludeTestServices: true })(
  "VectorStore contract: embedded (Postgres server)",
  (it) => {
    vectorContract(it)
    it.effect("writes of a transaction that rolls back never reach the shared index", () =>
      Effect.gen(function* () {
        const store = yield* VectorStore
        const tenant = TenantId.make("rollback-check")
        yield* store.ensureCollection("rollback_check", 16)
        yield* store.upsert(tenant, "rollback_check", Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, vector: vectorOf(i), payload: {} })))
        const q = vectorOf(12345)
        expect((yield* store.search(tenant, "rollback_check", q, { limit: 1 }))[0]!.id).not.toBe("ghost") // index loaded
        const inside = yield* Tenancy.withTenant(tenant)(
          Effect.gen(function* () {
            yield* store.upsert(tenant, "rollback_check", [{ id: "ghost", vector: q, payload: {} }])
            const seen = yield* store.search(tenant, "rollback_check", q, { limit: 1 })
            return yield* Effect.fail(seen)
          })
        ).pipe(Effect.flip)
        expect((inside as ReadonlyArray<{ id: string }>)[0]!.id).toBe("ghost") // the transaction sees its own write
        expect((yield* store.search(tenant, "rollback_check", q, { limit: 1 }))[0]!.id).not.toBe("ghost")
        expect(yield* store.count(tenant, "rollback_check")).toBe(20)
        yield* store.upsert(tenant, "rollback_check", [{ id: "ghost", vector: q, payload: {} }]) // the same revision, committed
        expect((yield* store.search(tenant, "rollback_check", q, { limit: 1 }))[0]!.id).toBe("ghost")
      })
    )
  }
)

// a budget too small for any collection: every search streams the rows page by page
layer(PgVectorStore.layerWith({ cacheBytes: 1024, pageSize: 7 }).pipe(Layer.provideMerge(db)), { excludeTestServices: true })(
  "VectorStore contract: embedded, streaming (cache budget 1 KiB)",
  (it) => {
    vectorContract(it)
    it.effect("a streamed search gives the same answer as the cached one", () =>
      Effect.gen(function* () {
        const store = yield* VectorStore
        const tenant = TenantId.make("stream-check")
        yield* store.ensureCollection("stream_check", 16)
        yield* store.upsert(tenant, "stream_check", Array.from({ length: 50 }, (_, i) => ({ id: `s${i}`, vector: vectorOf(i), payload: {} })))
        const cached = PgVectorStore.make({ cacheBytes: 1 << 26, pageSize: 1000 })
        const viaCache = yield* Effect.flatMap(cached, (s) => s.search(tenant, "stream_check", vectorOf(3), { limit: 8 }))
        const viaStream = yield* store.search(tenant, "stream_check", vectorOf(3), { limit: 8 })
        expect(viaStream).toEqual(viaCache)
        expect(Option.isSome(yield* store.get(tenant, "stream_check", "s3"))).toBe(true)
      })
    )
  }
)

const qdrantUrl = process.env.QDRANT_URL
describe.skipIf(qdrantUrl === undefined)("VectorStore contract: Qdrant (skipped: QDRANT_URL is not set)", () => {
  layer(
    QdrantVectorStore.layerWith({ url: qdrantUrl ?? "", apiKey: Option.none(), prefix: `nexus_test_${Date.now().toString(36)}_` }),
    { excludeTestServices: true }
  )("Qdrant at QDRANT_URL", (it) => vectorContract(it))
})
