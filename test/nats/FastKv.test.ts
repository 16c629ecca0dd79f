/**
 * `FastKv` on a real bucket: the writes actor state and contact locks use, checked against
 * the KV client's own semantics (revisions, a stale revision refused with 10071, create over
 * a delete marker), its reads against the KV client's, and the state store's mapping of a
 * stale write to `StateConflict`.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as AckedPublisher from "../../nats/AckedPublisher.js"
import { apiCode } from "../../nats/Errors.js"
import * as FastKv from "../../nats/FastKv.js"
import { NatsClient } from "../../nats/NatsClient.js"
import * as StateStore from "../../runtime/internal/StateStore.js"
import * as NatsFixture from "../fixtures/Nats.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

const setup = Effect.gen(function* () {
  const { nc, kvm } = yield* NatsClient
  const name = `fastkv-test-${NatsFixture.randomPrefix()}`
  const kv = yield* Effect.acquireRelease(
    Effect.promise(() => kvm.create(name, { history: 1 })),
    (kv) => Effect.promise(() => kv.destroy()).pipe(Effect.ignore)
  )
  const publisher = yield* Effect.acquireRelease(Effect.sync(() => AckedPublisher.make(nc)), (p) => Effect.sync(p.close))
  return { kv, fast: FastKv.make(name, publisher) }
})

const refusal = (p: Promise<unknown>) => p.then(() => "written", (e) => apiCode(e) ?? String(e))

layer(NatsFixture.layer(), { excludeTestServices: true })("FastKv (KV writes through the acked publisher)", (it) => {
  it.scoped("revisions, stale writes refused with 10071, create over a delete marker; the KV client reads what it wrote", () =>
    Effect.gen(function* () {
      const { kv, fast } = yield* setup
      const r1 = yield* Effect.promise(() => fast.create("contact.t.c1", enc.encode("one")))
      expect(r1).toBeGreaterThan(0)
      expect(yield* Effect.promise(() => refusal(fast.create("contact.t.c1", enc.encode("again"))))).toBe(10071)
      const r2 = yield* Effect.promise(() => fast.update("contact.t.c1", enc.encode("two"), r1))
      expect(r2).toBeGreaterThan(r1)
      expect(yield* Effect.promise(() => refusal(fast.update("contact.t.c1", enc.encode("stale"), r1)))).toBe(10071)
      const e = yield* Effect.promise(() => kv.get("contact.t.c1"))
      expect([e?.revision, dec.decode(e!.value)]).toEqual([r2, "two"])

      // a delete at a stale revision is refused; at the current one it leaves a marker
      expect(yield* Effect.promise(() => refusal(fast.delete("contact.t.c1", r1)))).toBe(10071)
      yield* Effect.promise(() => fast.delete("contact.t.c1", r2))
      expect((yield* Effect.promise(() => kv.get("contact.t.c1")))?.operation).toBe("DEL")
      // create over the marker succeeds (as the KV client's create does), once
      const r3 = yield* Effect.promise(() => fast.create("contact.t.c1", enc.encode("three")))
      expect(r3).toBeGreaterThan(r2)
      expect(yield* Effect.promise(() => refusal(fast.create("contact.t.c1", enc.encode("four"))))).toBe(10071)
      expect(dec.decode((yield* Effect.promise(() => kv.get("contact.t.c1")))!.value)).toBe("three")
    }))

  it.scoped("reads: the last entry as the KV client reads it (value, revision, delete and purge markers), null for a key never written", () =>
    Effect.gen(function* () {
      const { kv, fast } = yield* setup
      // what both read, in the same shape
      const both = (key: string) =>
        Effect.promise(async () => {
          const [f, k] = await Promise.all([fast.get(key), kv.get(key)])
          const shape = (e: { revision: number; operation: string; value: Uint8Array } | null) =>
            e === null ? null : { revision: e.revision, operation: e.operation, value: dec.decode(e.value) }
          return { fast: shape(f), kv: shape(k) }
        })
      expect(yield* both("contact.t.never")).toEqual({ fast: null, kv: null })
      const r1 = yield* Effect.promise(() => fast.create("contact.t.c3", enc.encode("one")))
      const put = yield* both("contact.t.c3")
      expect(put.fast).toEqual({ revision: r1, operation: "PUT", value: "one" })
      expect(put.fast).toEqual(put.kv)
      yield* Effect.promise(() => fast.delete("contact.t.c3", r1))
      const deleted = yield* both("contact.t.c3")
      expect(deleted.fast?.operation).toBe("DEL")
      expect(deleted.fast).toEqual(deleted.kv)
      yield* Effect.promise(() => fast.create("contact.t.c4", enc.encode("four")))
      yield* Effect.promise(() => kv.purge("contact.t.c4"))
      const purged = yield* both("contact.t.c4")
      expect(purged.fast?.operation).toBe("PURGE")
      expect(purged.fast).toEqual(purged.kv)
    }))

  it.scoped("the state store over FastKv: a write at a stale revision is a StateConflict", () =>
    Effect.gen(function* () {
      const { kv, fast } = yield* setup
      const store = StateStore.make(kv, fast)
      const r1 = yield* store.save("contact.t.c2", { s: { n: 1 }, d: [5] }, 0)
      const r2 = yield* store.save("contact.t.c2", { s: { n: 2 }, d: [5, 6] }, r1)
      const stale = yield* store.save("contact.t.c2", { s: { n: 3 }, d: [] }, r1).pipe(Effect.flip)
      expect(stale._tag).toBe("StateConflict")
      const fresh = yield* store.save("contact.t.c2", { s: { n: 9 }, d: [] }, 0).pipe(Effect.flip)
      expect(fresh._tag).toBe("StateConflict")
      expect(yield* store.load("contact.t.c2")).toEqual({ value: { s: { n: 2 }, d: [5, 6] }, revision: r2 })
    }))
})
