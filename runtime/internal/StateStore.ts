/**
 * Actor state in a KV bucket: one key per actor, one writer (the actor's host).
 * Every write names the revision it read; a stale revision (code 10071) means someone
 * else wrote, and the write is refused as a `StateConflict`.
 */
import type { KV } from "@nats-io/kv"
import { Effect } from "effect"
import { apiCode } from "../../nats/Errors.js"
import { KvFailed, StateConflict } from "../Errors.js"

/** A stored actor state: the encoded state and which deliveries it already includes. */
export interface StoredState {
  readonly s: unknown
  /**
   * Stream sequences of messages whose effects are in `s` and that are above the
   * consumer's ack floor (so could still be redelivered). Redeliveries after a failover can
   * arrive after newer messages, so "applied" cannot be a single high-water mark.
   */
  readonly d: ReadonlyArray<number>
}

/** Reads and writes actor state. */
export interface StateStore {
  readonly load: (key: string) => Effect.Effect<{ value: StoredState; revision: number } | null, KvFailed>
  /** Writes `value` if the key is still at `revision` (0 = must not exist); returns the new revision. */
  readonly save: (key: string, value: StoredState, revision: number) => Effect.Effect<number, KvFailed | StateConflict>
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** A state store over a KV bucket. */
export const make = (kv: KV): StateStore => ({
  load: (key) =>
    Effect.tryPromise({
      try: async () => {
        const e = await kv.get(key)
        if (e === null || e.operation !== "PUT" || e.value.length === 0) {
          return e === null ? null : { value: { s: undefined, d: [] }, revision: e.revision }
        }
        return { value: JSON.parse(decoder.decode(e.value)) as StoredState, revision: e.revision }
      },
      catch: (cause) => new KvFailed({ operation: "get", key, message: String(cause), cause })
    }),
  save: (key, value, revision) =>
    Effect.tryPromise({
      try: () => {
        const bytes = encoder.encode(JSON.stringify(value))
        return revision === 0 ? kv.create(key, bytes) : kv.update(key, bytes, revision)
      },
      catch: (cause) =>
        apiCode(cause) === 10071
          ? new StateConflict({ key, expected: revision, message: `state of ${key} changed since revision ${revision}` })
          : new KvFailed({ operation: "update", key, message: String(cause), cause })
    })
})
