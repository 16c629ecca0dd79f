/**
 * A JetStream publisher for hot paths. `js.publish()` builds a request object per
 * message, including an `Error` (with its stack) that is thrown away on every success;
 * at tens of thousands of messages a second that is a large share of client CPU. This
 * publisher sends plain core publishes with a reply subject under one wildcard inbox and
 * matches the JetStream acks itself, so many messages are in flight at the cost of a map
 * entry each. Same semantics: `Nats-Msg-Id` de-duplication, the ack says `duplicate`. KV
 * writes on hot paths go through it too (`FastKv`): a KV write is a publish with headers.
 */
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node"

/** The JetStream acknowledgement of one stored message. */
export interface Ack {
  readonly stream: string
  readonly seq: number
  readonly duplicate: boolean
}

/** A JetStream API error reported for a publish (e.g. 10077, 10071). */
export class PublishRejected extends Error {
  constructor(
    readonly subject: string,
    readonly code: number,
    description: string
  ) {
    super(`publish to ${subject} rejected (${code}): ${description}`)
    this.name = "PublishRejected"
  }
}

/** Publishes with de-duplication ids and resolves on the stream's ack. */
export interface AckedPublisher {
  readonly publish: (subject: string, data: Uint8Array, msgId: string) => Promise<Ack>
  /**
   * Publishes with the given JetStream headers (e.g. `Nats-Expected-Last-Subject-Sequence`
   * for a revision-checked KV write, `KV-Operation` for a delete marker). A rejected
   * expectation fails with `PublishRejected` and its API code (10071: wrong last sequence).
   */
  readonly publishHeaders: (subject: string, data: Uint8Array, headers: ReadonlyArray<readonly [string, string]>) => Promise<Ack>
  /**
   * A request answered by one reply (a JetStream API call, e.g. a stream message get), on
   * the same inbox: resolves with the reply's data. The client's own request path builds an
   * `Error` per request and throws it away on success (its `cancel()` after resolving).
   */
  readonly request: (subject: string, data: Uint8Array) => Promise<Uint8Array>
  readonly pending: () => number
  readonly close: () => void
}

interface Waiter {
  readonly subject: string
  readonly at: number
  readonly resolve: (reply: Msg) => void
  readonly reject: (e: Error) => void
}

const decoder = new TextDecoder()

/** Creates a publisher on a connection; unacked publishes fail after `timeoutMs` (default 10 s). */
export const make = (nc: NatsConnection, timeoutMs = 10_000): AckedPublisher => {
  const prefix = `_INBOX.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`
  const waiting = new Map<string, Waiter>()
  let next = 0
  const onReply = (err: Error | null, msg: Msg) => {
    const token = msg.subject.slice(prefix.length + 1)
    const w = waiting.get(token)
    if (w === undefined) return
    waiting.delete(token)
    if (err) return w.reject(err)
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      return w.reject(new PublishRejected(w.subject, 503, "no stream listens on this subject"))
    }
    w.resolve(msg)
  }
  const ackOf = (subject: string) => (msg: Msg): Ack => {
    const body = JSON.parse(decoder.decode(msg.data)) as {
      stream?: string
      seq?: number
      duplicate?: boolean
      error?: { code: number; err_code?: number; description: string }
    }
    if (body.error) throw new PublishRejected(subject, body.error.err_code ?? body.error.code, body.error.description)
    return { stream: body.stream ?? "", seq: body.seq ?? 0, duplicate: body.duplicate === true }
  }
  const sub: Subscription = nc.subscribe(`${prefix}.*`, { callback: onReply })
  const sweep = setInterval(() => {
    const limit = Date.now() - timeoutMs
    for (const [token, w] of waiting) {
      if (w.at < limit) {
        waiting.delete(token)
        w.reject(new Error(`no JetStream answer to ${w.subject} within ${timeoutMs} ms`))
      }
    }
  }, Math.min(1_000, timeoutMs))
  sweep.unref()
  const send = (subject: string, data: Uint8Array, h: MsgHdrs | undefined) =>
    new Promise<Msg>((resolve, reject) => {
      const token = (next++).toString(36)
      waiting.set(token, { subject, at: Date.now(), resolve, reject })
      try {
        nc.publish(subject, data, h === undefined ? { reply: `${prefix}.${token}` } : { reply: `${prefix}.${token}`, headers: h })
      } catch (e) {
        waiting.delete(token)
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
  return {
    publish: (subject, data, msgId) => {
      const h = headers()
      h.set("Nats-Msg-Id", msgId)
      return send(subject, data, h).then(ackOf(subject))
    },
    publishHeaders: (subject, data, pairs) => {
      const h = headers()
      for (const [k, v] of pairs) h.set(k, v)
      return send(subject, data, h).then(ackOf(subject))
    },
    request: (subject, data) => send(subject, data, undefined).then((msg) => msg.data),
    pending: () => waiting.size,
    close: () => {
      clearInterval(sweep)
      sub.unsubscribe()
      for (const w of waiting.values()) w.reject(new Error("publisher closed"))
      waiting.clear()
    }
  }
}
