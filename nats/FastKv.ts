/**
 * Revision-checked KV writes for hot paths (actor state, contact locks), sent through an
 * `AckedPublisher` instead of the KV client. A KV write is a JetStream publish to the
 * key's subject (`$KV.<bucket>.<key>`) with `Nats-Expected-Last-Subject-Sequence`; the
 * client's own path makes a request per write, with a timer and an `Error` built and
 * thrown away on every success, which at several writes per contact was a large share of
 * the node's CPU. Semantics are the KV client's: the new revision is the ack's sequence, a
 * stale revision fails with API code 10071, `create` over a deleted or purged key writes at
 * the marker's revision.
 *
 * `get` reads a key's last entry with the stream's message get (as the KV client does on a
 * bucket without direct gets: answered by the stream's leader, so it sees every
 * acknowledged write) on the publisher's inbox: the client's request path builds an `Error`
 * on every successful request, and another for a missing key (every new actor's state).
 *
 * Only for buckets of this account without a JetStream domain or API prefix (the
 * deployment's own buckets).
 */
import { type AckedPublisher, PublishRejected } from "./AckedPublisher.js"
import { apiCode } from "./Errors.js"

const EXPECTED = "Nats-Expected-Last-Subject-Sequence"
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A key's last entry: a value written (`PUT`) or a delete or purge marker. */
export interface Entry {
  readonly revision: number
  readonly operation: "PUT" | "DEL" | "PURGE"
  readonly value: Uint8Array
}

/** The operation a stored entry's headers name (the KV client's `KV-Operation`); none: a put. */
const operationOf = (hdrs: string | undefined): Entry["operation"] => {
  if (hdrs === undefined) return "PUT"
  const op = /\r\nKV-Operation:\s*(\w+)/i.exec(Buffer.from(hdrs, "base64").toString("latin1"))?.[1]?.toUpperCase()
  return op === "DEL" || op === "PURGE" ? op : "PUT"
}

/** The writes of one bucket. */
export interface FastKv {
  /** Writes `key` if it does not exist (or was deleted); returns the revision. */
  readonly create: (key: string, value: Uint8Array) => Promise<number>
  /** Writes `key` if it is still at `revision`; returns the new revision. */
  readonly update: (key: string, value: Uint8Array, revision: number) => Promise<number>
  /** Writes a delete marker if `key` is still at `revision`. */
  readonly delete: (key: string, revision: number) => Promise<void>
  /** The key's last entry (marker included), or null if it was never written (or the history is gone). */
  readonly get: (key: string) => Promise<Entry | null>
}

/** Fast writes and reads of bucket `bucket` through `publisher`. */
export const make = (bucket: string, publisher: AckedPublisher): FastKv => {
  const subjectOf = (key: string) => `$KV.${bucket}.${key}`
  const getSubject = `$JS.API.STREAM.MSG.GET.KV_${bucket}`
  const put = (key: string, value: Uint8Array, revision: number) =>
    publisher.publishHeaders(subjectOf(key), value, [[EXPECTED, String(revision)]]).then((ack) => ack.seq)
  const get = async (key: string): Promise<Entry | null> => {
    const reply = await publisher.request(getSubject, encoder.encode(JSON.stringify({ last_by_subj: subjectOf(key) })))
    const body = JSON.parse(decoder.decode(reply)) as {
      message?: { seq: number; data?: string; hdrs?: string }
      error?: { code: number; err_code?: number; description: string }
    }
    if (body.error !== undefined) {
      // 10037: no message found
      if (body.error.code === 404) return null
      throw new PublishRejected(getSubject, body.error.err_code ?? body.error.code, body.error.description)
    }
    const m = body.message!
    return {
      revision: m.seq,
      operation: operationOf(m.hdrs),
      value: m.data === undefined ? new Uint8Array(0) : new Uint8Array(Buffer.from(m.data, "base64"))
    }
  }
  return {
    create: (key, value) =>
      put(key, value, 0).catch(async (e) => {
        if (apiCode(e) !== 10071) throw e
        // a deleted or purged key leaves a marker: create over it at its revision (as the KV client does)
        const cur = await get(key)
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
        .then(() => undefined),
    get
  }
}
