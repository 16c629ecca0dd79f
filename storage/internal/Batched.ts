/**
 * Calls of one store operation made in the same turn of the event loop, run as one.
 *
 * A node handles many messages at once: one pull brings dozens, and their handlers run side
 * by side until each waits on its first round trip. When they all make the same kind of call
 * (the executor recording deliveries), each paid for a transaction of its own: a connection
 * from the pool, `BEGIN` and the tenant's settings, the statement, `COMMIT`, and the Effect
 * and driver work around them, about as much client CPU as the rest of the message. Here the
 * calls of one turn wait for `setImmediate`, then those of one key (a tenant) go to `run`
 * together, at most `maxBatch` at a time, in a fiber of the store's runtime.
 *
 * `run` answers each item in order. If it fails as a whole, every item is tried again on its
 * own through `single`, so one bad item fails only its own call. A caller inside a
 * transaction (or a tenant scope) bypasses the batch: its call must be part of that
 * transaction, and `single` runs there.
 *
 * A batch runs in a fiber of the store, not of its callers: their fiber refs (the author
 * `Tenancy.withActor` names for the audit log, the current span) do not reach it. Batch only
 * operations that write no audited table (deliveries, reads).
 */
import { Deferred, Effect, Exit, FiberId, Runtime } from "effect"
import { inScope } from "../Tenancy.js"

/** What a batched operation needs. */
export interface Options<A, B, E> {
  /** Items of different keys never share a batch (e.g. the tenant: one transaction each). */
  readonly key: (item: A) => string
  /** Runs a batch (two items or more); answers each item, in order. */
  readonly run: (items: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Exit.Exit<B, E>>, E>
  /** Runs one item: alone in its turn, after a failed batch, or inside a caller's transaction. */
  readonly single: (item: A) => Effect.Effect<B, E>
  /** Largest batch. */
  readonly maxBatch: number
}

interface Waiting<A, B, E> {
  readonly item: A
  readonly deferred: Deferred.Deferred<B, E>
}

/** The batched operation: each call waits for its own answer. */
export const make = <A, B, E>(options: Options<A, B, E>): Effect.Effect<(item: A) => Effect.Effect<B, E>> =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    let pending = new Map<string, Array<Waiting<A, B, E>>>()
    let scheduled = false

    const settle = (w: Waiting<A, B, E>, exit: Exit.Exit<B, E>) => Deferred.unsafeDone(w.deferred, exit)

    const alone = (w: Waiting<A, B, E>) =>
      Effect.exit(options.single(w.item)).pipe(Effect.map((exit) => settle(w, exit)))

    const runBatch = (batch: ReadonlyArray<Waiting<A, B, E>>): Effect.Effect<void> =>
      batch.length === 1
        ? alone(batch[0]!)
        : Effect.exit(options.run(batch.map((w) => w.item))).pipe(
            Effect.flatMap((exit) =>
              Exit.isSuccess(exit) && exit.value.length === batch.length
                ? Effect.sync(() => batch.forEach((w, i) => settle(w, exit.value[i]!)))
                : // the batch as a whole failed: each on its own, so one bad item fails alone
                  Effect.forEach(batch, alone, { concurrency: "unbounded", discard: true })
            )
          )

    const flush = () => {
      scheduled = false
      const groups = pending
      pending = new Map()
      for (const group of groups.values()) {
        for (let i = 0; i < group.length; i += options.maxBatch) runFork(runBatch(group.slice(i, i + options.maxBatch)))
      }
    }

    return (item: A) =>
      Effect.gen(function* () {
        if (yield* inScope) return yield* options.single(item)
        const deferred = Deferred.unsafeMake<B, E>(FiberId.none)
        const key = options.key(item)
        const group = pending.get(key)
        if (group === undefined) pending.set(key, [{ item, deferred }])
        else group.push({ item, deferred })
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
        return yield* Deferred.await(deferred)
      })
  })
