/**
 * Actor state in a KV bucket: one key per actor, one writer (the actor's host).
 * Every write names the revision it read; a stale revision (code 10071) means someone
 * else wrote, and the write is refused as a `StateConflict`.
 */
import type { KV } from "@nats-io/kv"
import type { FastKv } from "../../nats/FastKv.js"
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
  /**
   * The outbox of the batch this state was committed with, published after the commit
   * (transactional outbox): a host that loads the state republishes it when that batch
   * may not have been published (its messages are not all acked). De-duplication ids make
   * a repeat harmless.
   */
  readonly o?: ReadonlyArray<{ readonly subject: string; readonly id: string; readonly json: string }>
  /** Stream sequences of the batch that produced `o`. */
  readonly ob?: ReadonlyArray<number>
  /** When `o` was committed (epoch ms). */
  readonly ot?: number
}

/** Reads and writes actor state. */
export interface StateStore {
  readonly load: (key: string) => Effect.Effect<{ value: StoredState; revision: number } | null, KvFailed>
  /** Writes `value` if the key is still at `revision` (0 = must not exist); returns the new revision. */
  readonly save: (key: string, value: StoredState, revision: number) => Effect.Effect<number, KvFailed | StateConflict>
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** The stored JSON; outbox messages are embedded as their wire JSON text, not encoded again. */
const encode = (value: StoredState): string => {
  const head = `{"s":${JSON.stringify(value.s)},"d":${JSON.stringify(value.d)}`
  if (value.o === undefined || value.o.length === 0) return `${head}}`
  const o = value.o.map((w) => `{"j":${JSON.stringify(w.subject)},"i":${JSON.stringify(w.id)},"w":${w.json}}`).join(",")
  return `${head},"o":[${o}],"ob":${JSON.stringify(value.ob ?? [])},"ot":${value.ot ?? 0}}`
}

/** A state store over a KV bucket; reads and writes go through `fast` when given (see `FastKv`). */
export const make = (kv: KV, fast?: FastKv): StateStore => ({
  load: (key) =>
    Effect.tryPromise({
      try: async () => {
        const e = await (fast ? fast.get(key) : kv.get(key))
        if (e === null || e.operation !== "PUT" || e.value.length === 0) {
          return e === null ? null : { value: { s: undefined, d: [] }, revision: e.revision }
        }
        const raw = JSON.parse(decoder.decode(e.value)) as Omit<StoredState, "o"> & {
          o?: ReadonlyArray<{ j: string; i: string; w: unknown }>
        }
        // the outbox is stored as parsed JSON (embedded without re-encoding): back to wire text
        const o = raw.o?.map((x) => ({ subject: x.j, id: x.i, json: JSON.stringify(x.w) }))
        // Object.assign, not a spread followed by new keys: V8's slow path (see `Message.registry`'s encodeJson)
        return { value: Object.assign({}, raw, { o }), revision: e.revision }
      },
      catch: (cause) => new KvFailed({ operation: "get", key, message: String(cause), cause })
    }),
  save: (key, value, revision) =>
    Effect.tryPromise({
      try: () => {
        const bytes = encoder.encode(encode(value))
        const writer = fast ?? kv
        return revision === 0 ? writer.create(key, bytes) : writer.update(key, bytes, revision)
      },
      catch: (cause) =>
        apiCode(cause) === 10071
          ? new StateConflict({ key, expected: revision, message: `state of ${key} changed since revision ${revision}` })
          : new KvFailed({ operation: "update", key, message: String(cause), cause })
    })
})
