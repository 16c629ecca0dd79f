/**
 * Leased locks in a KV bucket (used for contact locks).
 *
 * - `acquire` is a KV `create`: it succeeds for exactly one holder across all nodes; the
 *   same holder acquiring again is idempotent (re-entrant); a conflict names the current
 *   holder, since when it holds the lock and its priority.
 * - A lease is the bucket's TTL (bucket-wide on nats-server 2.9). While a lock is held
 *   through this node, the node renews it every third of the TTL with a revision-checked
 *   `update`, so a live holder keeps it and a dead holder's lock expires by itself.
 * - `preempt` takes a lock over from a holder of lower priority, revision-checked: if
 *   the lock changed meanwhile, nothing is taken.
 * - `release` deletes only if the lock is still the holder's, checked by revision: the
 *   revision this node knows, without a read; a read only when the lock was renewed
 *   or re-acquired elsewhere since.
 */
import type { KV } from "@nats-io/kv"
import * as AckedPublisher from "../nats/AckedPublisher.js"
import * as FastKv from "../nats/FastKv.js"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { apiCode } from "../nats/Errors.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import { buckets } from "../nats/Topology.js"
import { KvFailed } from "./Errors.js"

/** Result of an acquire or a preempt. */
export type Acquired =
  | { readonly _tag: "Acquired"; readonly revision: number; readonly reentrant: boolean; readonly preempted?: string }
  | { readonly _tag: "Held"; readonly holder: string; readonly since: number; readonly priority: number; readonly revision: number }

/** The lock service. */
export interface LocksService {
  /** Takes the lock for `holder` (re-entrant), with the holder's `priority` (default 0) recorded for preemption. */
  readonly acquire: (key: string, holder: string, priority?: number) => Effect.Effect<Acquired, KvFailed>
  /**
   * Takes the lock from its current holder if that holder's priority is lower than
   * `priority` (revision-checked against what `held` saw); otherwise answers `Held`.
   */
  readonly preempt: (key: string, holder: string, priority: number) => Effect.Effect<Acquired, KvFailed>
  /** Releases if `holder` still holds it; returns whether it did. */
  readonly release: (key: string, holder: string) => Effect.Effect<boolean, KvFailed>
  readonly holderOf: (key: string) => Effect.Effect<string | null, KvFailed>
  /** Locks this node currently renews. */
  readonly renewing: () => number
}

/** Leased locks. */
export class Locks extends Context.Tag("nexus/Locks")<Locks, LocksService>() {}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** What a lock key holds: holder, since when, priority. */
interface LockValue {
  readonly h: string
  readonly t: number
  readonly p?: number
}

const kvFailed = (operation: string, key: string) => (cause: unknown) =>
  new KvFailed({ operation, key, message: String(cause), cause })

/**
 * Locks over a KV bucket; `renewEvery` is the renewal period (a third of the bucket TTL).
 * Writes and reads go through `fast` when given (see `FastKv`), else through the KV client.
 */
export const make = (kv: KV, renewEvery: Duration.DurationInput, fast?: FastKv.FastKv) =>
  Effect.gen(function* () {
    const writes = fast ?? {
      create: (key: string, value: Uint8Array) => kv.create(key, value),
      update: (key: string, value: Uint8Array, revision: number) => kv.update(key, value, revision),
      delete: (key: string, revision: number) => kv.delete(key, { previousSeq: revision })
    }
    /** Locks held through this node: key → holder, value, last known revision. */
    const held = new Map<string, { holder: string; value: Uint8Array; revision: number }>()

    const read = (key: string) =>
      Effect.tryPromise({
        try: async () => {
          const e = await (fast ? fast.get(key) : kv.get(key))
          if (e === null || e.operation !== "PUT") return null
          return { value: JSON.parse(dec.decode(e.value)) as LockValue, revision: e.revision }
        },
        catch: kvFailed("get", key)
      })

    const hold = (key: string, holder: string, value: Uint8Array, revision: number) => {
      held.set(key, { holder, value, revision })
    }

    const acquire = (key: string, holder: string, priority = 0): Effect.Effect<Acquired, KvFailed> => {
      const value = enc.encode(JSON.stringify({ h: holder, t: Date.now(), p: priority } satisfies LockValue))
      return Effect.tryPromise({ try: () => writes.create(key, value), catch: (cause) => cause }).pipe(
        Effect.map((revision): Acquired => {
          hold(key, holder, value, revision)
          return { _tag: "Acquired", revision, reentrant: false }
        }),
        Effect.catchAll((cause) =>
          apiCode(cause) !== 10071
            ? Effect.fail(kvFailed("create", key)(cause))
            : read(key).pipe(
                Effect.flatMap((cur) => {
                  if (cur === null) return acquire(key, holder, priority) // released between our create and read
                  if (cur.value.h !== holder) {
                    return Effect.succeed<Acquired>({
                      _tag: "Held",
                      holder: cur.value.h,
                      since: cur.value.t,
                      priority: cur.value.p ?? 0,
                      revision: cur.revision
                    })
                  }
                  // ours already (a re-run, or the holder moved here from another node): renew it from here
                  hold(key, holder, enc.encode(JSON.stringify(cur.value)), cur.revision)
                  return Effect.succeed<Acquired>({ _tag: "Acquired", revision: cur.revision, reentrant: true })
                })
              )
        )
      )
    }

    const preempt = (key: string, holder: string, priority: number): Effect.Effect<Acquired, KvFailed> =>
      acquire(key, holder, priority).pipe(
        Effect.flatMap((got) => {
          if (got._tag === "Acquired" || got.priority >= priority) return Effect.succeed(got)
          const value = enc.encode(JSON.stringify({ h: holder, t: Date.now(), p: priority } satisfies LockValue))
          return Effect.tryPromise({ try: () => writes.update(key, value, got.revision), catch: (cause) => cause }).pipe(
            Effect.map((revision): Acquired => {
              hold(key, holder, value, revision)
              return { _tag: "Acquired", revision, reentrant: false, preempted: got.holder }
            }),
            // it changed under us (released, renewed or taken): look again
            Effect.catchAll((cause) => (apiCode(cause) === 10071 ? preempt(key, holder, priority) : Effect.fail(kvFailed("update", key)(cause))))
          )
        })
      )

    const deleteAt = (key: string, revision: number) =>
      Effect.tryPromise({ try: () => writes.delete(key, revision).then(() => true), catch: (cause) => cause })

    const release = (key: string, holder: string): Effect.Effect<boolean, KvFailed> => {
      const mine = held.get(key)
      const viaRead = read(key).pipe(
        Effect.flatMap((cur) =>
          cur === null || cur.value.h !== holder
            ? Effect.succeed(false)
            : deleteAt(key, cur.revision).pipe(
                Effect.catchAll((cause) => (apiCode(cause) === 10071 ? Effect.succeed(false) : Effect.fail(kvFailed("delete", key)(cause))))
              )
        )
      )
      const done = Effect.ensuring(Effect.sync(() => held.get(key)?.holder === holder && held.delete(key)))
      if (mine === undefined || mine.holder !== holder) return viaRead.pipe(done)
      // the revision we know: no read needed unless it moved on
      return deleteAt(key, mine.revision).pipe(
        Effect.catchAll((cause) => (apiCode(cause) === 10071 ? viaRead : Effect.fail(kvFailed("delete", key)(cause)))),
        done
      )
    }

    // renew every lock held through this node; one that changed under us is no longer ours to renew
    const renewAll = Effect.promise(async () => {
      await Promise.all(
        [...held].map(async ([key, h]) => {
          try {
            const revision = await writes.update(key, h.value, h.revision)
            if (held.get(key) === h) h.revision = revision
          } catch (e) {
            if (apiCode(e) === 10071 && held.get(key) === h) held.delete(key)
          }
        })
      )
    })
    yield* Effect.forkScoped(renewAll.pipe(Effect.repeat(Schedule.spaced(renewEvery)), Effect.delay(renewEvery)))

    return {
      acquire,
      preempt,
      release,
      holderOf: (key) => read(key).pipe(Effect.map((c) => c?.value.h ?? null)),
      renewing: () => held.size
    } satisfies LocksService
  })

/** Locks in the deployment's lock bucket (provisioned by the node), renewed every third of its TTL. */
export const layer: Layer.Layer<Locks, KvFailed, NatsClient | NatsConfig> = Layer.scoped(
  Locks,
  Effect.gen(function* () {
    const { kvm, nc } = yield* NatsClient
    const cfg = yield* NatsConfig
    const publisher = yield* Effect.acquireRelease(Effect.sync(() => AckedPublisher.make(nc)), (p) => Effect.sync(p.close))
    const name = buckets(cfg.prefix).locks
    const kv = yield* Effect.tryPromise({ try: () => kvm.open(name), catch: kvFailed("open", name) })
    const status = yield* Effect.tryPromise({ try: () => kv.status(), catch: kvFailed("status", name) })
    const ttlMs = status.ttl > 0 ? status.ttl : 5 * 60_000
    return yield* make(kv, Duration.millis(Math.max(100, Math.floor(ttlMs / 3))), FastKv.make(name, publisher))
  })
)
