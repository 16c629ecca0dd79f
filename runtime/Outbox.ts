/**
 * What a handler asks the runtime to send. Handlers never publish: they add envelopes to
 * an outbox; the runtime publishes them after the handler succeeded, with ids derived
 * from the incoming message's id, so a re-run after a crash publishes the same ids and
 * JetStream's de-duplication drops the repeats.
 *
 * A message's trace context is the span it was sent from (with a tracer configured, the
 * runtime handles each message in a span continuing its envelope's trace), so the messages
 * a handler sends are children of its handling; without one, the cause's trace id with a
 * span id derived from the child's id. Only ids de-duplicate: a re-run may carry another
 * traceparent.
 */
import * as crypto from "node:crypto"
import { Address, type Envelope, type Message, Trace } from "../protocols/index.js"

/** One message to publish. */
export interface OutgoingMessage {
  readonly to: Address.Address
  readonly def: Message.MessageType
  readonly payload: unknown
  readonly envelope: Omit<Envelope.Envelope, "payload" | "type" | "v">
}

/**
 * A digest of a string: the one-shot `crypto.hash` where Node has it (20.12+; several
 * times cheaper than a `Hash` object per id, and ids are made for every message sent).
 */
const digest: (algorithm: "sha256" | "sha1", text: string, encoding: "base64url" | "hex") => string =
  typeof (crypto as { hash?: unknown }).hash === "function"
    ? (algorithm, text, encoding) => (crypto as unknown as { hash: (a: string, t: string, e: string) => string }).hash(algorithm, text, encoding)
    : (algorithm, text, encoding) => crypto.createHash(algorithm).update(text).digest(encoding)

/** Deterministic child id: the same parent and index always give the same id. */
export const childId = (parentId: string, index: number | string): string =>
  digest("sha256", `${parentId}#${index}`, "base64url").slice(0, 24)

/**
 * Deterministic id of a keyed message: the same tenant and key always give the same id,
 * whatever message caused it (a collapsed timer, a wake-up sent twice).
 */
export const keyedId = (tenant: string, key: string): string =>
  digest("sha256", `${tenant}/key/${key}`, "base64url").slice(0, 24)

/** A fresh random id for messages entering the system. */
export const freshId = (): string => crypto.randomBytes(16).toString("base64url")

const spanOf = (id: string) => digest("sha1", id, "hex").slice(0, 16)

/** A new W3C traceparent for input that carries none. */
export const newTraceparent = (id: string): string =>
  `00-${crypto.randomBytes(16).toString("hex")}-${spanOf(id)}-01`

/**
 * The traceparent of a child message sent outside any span: same trace, a span id derived
 * from the child id.
 */
export const childTraceparent = (parent: string, id: string): string => {
  const parts = parent.split("-")
  return `00-${parts[1] ?? crypto.randomBytes(16).toString("hex")}-${spanOf(id)}-01`
}

/** Collects outgoing messages caused by one incoming envelope. */
export class Outbox {
  readonly messages: Array<OutgoingMessage> = []
  constructor(
    readonly cause: Envelope.Envelope,
    readonly self: Address.Address
  ) {}

  /**
   * Queues a message to `to` (an actor, agent or topic address). Its id derives from the
   * cause and its place in the outbox, or from `options.key` (and the tenant) when given;
   * `options.replyTo` sends it on someone's behalf (see `Agent.SendOptions`).
   */
  send<A, I>(
    to: Address.Address,
    def: Message.MessageType<A, I>,
    payload: A,
    options?: { readonly key?: string; readonly replyTo?: Address.Address }
  ): void {
    const id = options?.key !== undefined ? keyedId(this.cause.tenant, options.key) : childId(this.cause.id, this.messages.length)
    this.messages.push({
      to,
      def,
      payload,
      envelope: {
        id: id as Envelope.Envelope["id"],
        tenant: this.cause.tenant,
        from: this.self,
        to,
        correlationId: this.cause.correlationId,
        causationId: this.cause.id,
        ts: Date.now(),
        // the current span (the handling of the cause, or a span inside it); else derived
        trace: { traceparent: Trace.current() ?? childTraceparent(this.cause.trace.traceparent, id) },
        ...(options?.replyTo !== undefined ? { replyTo: options.replyTo } : {})
      }
    })
  }
}
