/**
 * Contact locks on a real KV bucket with a short lease (TTL), as two or three nodes see
 * them (one `Locks` service per node): one holder at a time, re-entrant for the same
 * holder, revision-checked release, renewal that keeps a live holder's lock, expiry of a
 * dead holder's lock, and preemption by priority. Nodes write through `FastKv` or the KV
 * client, alternately.
 */
import { expect, layer } from "@effect/vitest"
import type { KV } from "@nats-io/kv"
import { Effect, Exit, Scope } from "effect"
import * as AckedPublisher from "../../nats/AckedPublisher.js"
import * as FastKv from "../../nats/FastKv.js"
import { NatsClient } from "../../nats/NatsClient.js"
import * as Locks from "../../runtime/Locks.js"
import * as NatsFixture from "../fixtures/Nats.js"

const TTL_MS = 1_500
const RENEW_MS = 400

const bucket = Effect.acquireRelease(
  Effect.gen(function* () {
    const { kvm } = yield* NatsClient
    const name = `locks-test-${NatsFixture.randomPrefix()}`
    const kv = yield* Effect.promise(() => kvm.create(name, { ttl: TTL_MS, history: 1 }))
    return Object.assign(kv, { bucket: name })
  }),
  (kv) => Effect.promise(() => kv.destroy()).pipe(Effect.ignore)
)

let nodes = 0

/**
 * A node's lock service, stopped (no more renewals: the node died) when `scope` closes.
 * Nodes alternate between the fast write path nodes use (`FastKv`, through an acked
 * publisher) and the KV client's, so the two are also checked against each other.
 */
const node = (kv: KV & { readonly bucket: string }, scope: Scope.Scope) =>
  Effect.gen(function* () {
    if (nodes++ % 2 === 1) return yield* Locks.make(kv, RENEW_MS)
    const { nc } = yield* NatsClient
    const publisher = yield* Effect.acquireRelease(Effect.sync(() => AckedPublisher.make(nc)), (p) => Effect.sync(p.close))
    return yield* Locks.make(kv, RENEW_MS, FastKv.make(kv.bucket, publisher))
  }).pipe(Scope.extend(scope))

layer(NatsFixture.layer(), { excludeTestServices: true })("contact locks (KV lease)", (it) => {
  {
    it.scoped("one holder at a time across nodes; re-entrant; only the holder releases, by revision", () =>
      Effect.gen(function* () {
        const kv = yield* bucket
        const scope = yield* Effect.scope
        const [a, b] = [yield* node(kv, scope), yield* node(kv, scope)]
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => (i % 2 === 0 ? a : b).acquire("contact.t.c1", `campaign:c${i}`),
          { concurrency: "unbounded" }
        )
        const winners = results.filter((r) => r._tag === "Acquired")
        expect(winners).toHaveLength(1)
        const holder = yield* a.holderOf("contact.t.c1")
        for (const r of results) if (r._tag === "Held") expect(r.holder).toBe(holder)

        // the same holder again, from the other node: idempotent
        const again = yield* b.acquire("contact.t.c1", holder!)
        expect(again).toMatchObject({ _tag: "Acquired", reentrant: true })
        // someone else cannot release it
        expect(yield* a.release("contact.t.c1", "campaign:intruder")).toBe(false)
        expect(yield* a.holderOf("contact.t.c1")).toBe(holder)
        // the holder can, and then anyone may take it
        expect(yield* b.release("contact.t.c1", holder!)).toBe(true)
        expect(yield* a.holderOf("contact.t.c1")).toBeNull()
        expect(yield* a.acquire("contact.t.c1", "campaign:next")).toMatchObject({ _tag: "Acquired", reentrant: false })
      }))

    it.scoped("a live holder keeps its lock past the lease by renewing; a dead holder's lock expires", () =>
      Effect.gen(function* () {
        const kv = yield* bucket
        const live = yield* node(kv, yield* Effect.scope)
        const deadScope = yield* Scope.make()
        const dead = yield* node(kv, deadScope)
        expect((yield* live.acquire("contact.t.alive", "campaign:a"))._tag).toBe("Acquired")
        expect((yield* dead.acquire("contact.t.orphan", "campaign:b"))._tag).toBe("Acquired")
        yield* Scope.close(deadScope, Exit.void) // the node holding `orphan` dies: no more renewals
        yield* Effect.sleep(TTL_MS * 3)
        // renewed through three lease lengths
        expect(yield* live.holderOf("contact.t.alive")).toBe("campaign:a")
        expect(live.renewing()).toBe(1)
        // expired: free for another campaign
        expect(yield* live.holderOf("contact.t.orphan")).toBeNull()
        expect((yield* live.acquire("contact.t.orphan", "campaign:c"))._tag).toBe("Acquired")
        // a renewed lock is still released by its holder (the revision moved on since acquire)
        expect(yield* live.release("contact.t.alive", "campaign:a")).toBe(true)
        expect(yield* live.holderOf("contact.t.alive")).toBeNull()
      }), 20_000)

    it.scoped("preemption: a higher priority takes the lock over; a lower or equal one does not", () =>
      Effect.gen(function* () {
        const kv = yield* bucket
        const scope = yield* Effect.scope
        const [low, high, other] = [yield* node(kv, scope), yield* node(kv, scope), yield* node(kv, scope)]
        expect((yield* low.acquire("contact.t.p", "campaign:low", 1))._tag).toBe("Acquired")
        expect(yield* other.preempt("contact.t.p", "campaign:same", 1)).toMatchObject({ _tag: "Held", holder: "campaign:low", priority: 1 })
        const taken = yield* high.preempt("contact.t.p", "campaign:high", 5)
        expect(taken).toMatchObject({ _tag: "Acquired", preempted: "campaign:low" })
        expect(yield* low.holderOf("contact.t.p")).toBe("campaign:high")
        // the preempted holder can no longer release it, and stops renewing it
        expect(yield* low.release("contact.t.p", "campaign:low")).toBe(false)
        yield* Effect.sleep(RENEW_MS * 3)
        expect(low.renewing()).toBe(0)
        expect(yield* low.holderOf("contact.t.p")).toBe("campaign:high")
      }), 20_000)
  }
})
