/**
 * Revision-checked KV writes for hot paths (actor state, contact locks), sent through an
 * `AckedPublisher` instead of the KV client. A KV write is a JetStream publish to the
 * key's subject (`$KV.<bucket>.<key>`) with `Nats-Expected-Last-Subject-Sequence`; the
 * client's own path makes a request per write, with a timer and an `Error` built and
 * thrown away on every success, which at several writes per contact was a large share of
 * the node's CPU. Semantics are the KV client's: the new revision is the ack's sequence, a
 * stale revision fails with API code 10071, `create` over a deleted or purged key writes at
 * the marker's revision. Reads stay on the KV client.
 *
 * Only for buckets of this account without a JetStream domain or API prefix (the
 * deployment's own buckets).
 */
import type { KV } from "@nats-io/kv"
import type { AckedPublisher } from "./AckedPublisher.js"
import { apiCode } from "./Errors.js"

const EXPECTED = "Nats-Expected-Last-Subject-Sequence"

/** The writes of one bucket. */
export interface FastKv {
  /** Writes `key` if it does not exist (or was deleted); returns the revision. */
  readonly create: (key: string, value: Uint8Array) => Promise<number>
  /** Writes `key` if it is still at `revision`; returns the new revision. */
  readonly update: (key: string, value: Uint8Array, revision: number) => Promise<number>
  /** Writes a delete marker if `key` is still at `revision`. */
  readonly delete: (key: string, revision: number) => Promise<void>
}

/** Fast writes on `kv` (bucket `bucket`) through `publisher`. */
export const make = (kv: KV, bucket: string, publisher: AckedPublisher): FastKv => {
  const subjectOf = (key: string) => `$KV.${bucket}.${key}`
  const put = (key: string, value: Uint8Array, revision: number) =>
    publisher.publishHeaders(subjectOf(key), value, [[EXPECTED, String(revision)]]).then((ack) => ack.seq)
  return {
    create: (key, value) =>
      put(key, value, 0).catch(async (e) => {
        if (apiCode(e) !== 10071) throw e
        // a deleted or purged key leaves a marker: create over it at its revision (as the KV client does)
        const cur = await kv.get(key)
        if (cur === null || cur.operation === "PUT") throw e
        return put(key, value, cur.revision)
      }),
    update: (key, value, revision) => put(key, value, revision),
    delete: (key, revision) =>
      publisher
        .publishHeaders(subjectOf(key), new Uint8Array(0), [
          ["KV-Operation", "DEL"],
          [EXPECTED, String(revision)]
        ])
        .then(() => undefined)
  }
}
