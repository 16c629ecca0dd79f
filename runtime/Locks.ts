/**
 * Leased locks in a KV bucket (used for contact locks). `acquire` is a KV `create`: it
 * succeeds for exactly one holder across all nodes; the same holder acquiring again is
 * idempotent; a conflict names the current holder. `release` deletes only if the lock is
 * still ours (revision-checked). Leases expire with the bucket TTL, so a dead holder's lock
 * does not outlive it.
 */
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer } from "effect"
import { apiCode } from "../nats/Errors.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import { buckets } from "../nats/Topology.js"
import { KvFailed } from "./Errors.js"

/** Result of an acquire. */
export type Acquired =
  | { readonly _tag: "Acquired"; readonly revision: number; readonly reentrant: boolean }
  | { readonly _tag: "Held"; readonly holder: string; readonly since: number }

/** The lock service. */
export interface LocksService {
  readonly acquire: (key: string, holder: string) => Effect.Effect<Acquired, KvFailed>
  /** Releases if `holder` still holds it; returns whether it did. */
  readonly release: (key: string, holder: string) => Effect.Effect<boolean, KvFailed>
  readonly holderOf: (key: string) => Effect.Effect<string | null, KvFailed>
}

/** Leased locks. */
export class Locks extends Context.Tag("nexus/Locks")<Locks, LocksService>() {}

const enc = new TextEncoder()
const dec = new TextDecoder()

interface LockValue {
  readonly h: string
  readonly t: number
}

/** Locks over a KV bucket. */
export const make = (kv: KV): LocksService => {
  const read = (key: string) =>
    Effect.tryPromise({
      try: async () => {
        const e = await kv.get(key)
        if (e === null || e.operation !== "PUT") return null
        return { value: JSON.parse(dec.decode(e.value)) as LockValue, revision: e.revision }
      },
      catch: (cause) => new KvFailed({ operation: "get", key, message: String(cause), cause })
    })

  const acquire = (key: string, holder: string): Effect.Effect<Acquired, KvFailed> =>
    Effect.tryPromise({
      try: () => kv.create(key, enc.encode(JSON.stringify({ h: holder, t: Date.now() } satisfies LockValue))),
      catch: (cause) => cause
    }).pipe(
      Effect.map((revision): Acquired => ({ _tag: "Acquired", revision, reentrant: false })),
      Effect.catchAll((cause) =>
        apiCode(cause) !== 10071
          ? Effect.fail(new KvFailed({ operation: "create", key, message: String(cause), cause }))
          : read(key).pipe(
              Effect.flatMap((cur) =>
                cur === null
                  ? acquire(key, holder) // released between our create and read
                  : Effect.succeed<Acquired>(
                      cur.value.h === holder
                        ? { _tag: "Acquired", revision: cur.revision, reentrant: true }
                        : { _tag: "Held", holder: cur.value.h, since: cur.value.t }
                    )
              )
            )
      )
    )

  const release = (key: string, holder: string) =>
    read(key).pipe(
      Effect.flatMap((cur) =>
        cur === null || cur.value.h !== holder
          ? Effect.succeed(false)
          : Effect.tryPromise({
              try: () => kv.delete(key, { previousSeq: cur.revision }).then(() => true),
              catch: (cause) => cause
            }).pipe(
              Effect.catchAll((cause) =>
                apiCode(cause) === 10071
                  ? Effect.succeed(false)
                  : Effect.fail(new KvFailed({ operation: "delete", key, message: String(cause), cause }))
              )
            )
      )
    )

  return { acquire, release, holderOf: (key) => read(key).pipe(Effect.map((c) => c?.value.h ?? null)) }
}

/** Locks in the deployment's lock bucket (provisioned by the node). */
export const layer: Layer.Layer<Locks, KvFailed, NatsClient | NatsConfig> = Layer.effect(
  Locks,
  Effect.gen(function* () {
    const { kvm } = yield* NatsClient
    const cfg = yield* NatsConfig
    const name = buckets(cfg.prefix).locks
    const kv = yield* Effect.tryPromise({
      try: () => kvm.open(name),
      catch: (cause) => new KvFailed({ operation: "open", key: name, message: String(cause), cause })
    })
    return make(kv)
  })
)
