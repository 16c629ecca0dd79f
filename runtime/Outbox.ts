/**
 * What a handler asks the runtime to send. Handlers never publish: they add envelopes to
 * an outbox; the runtime publishes them after the handler succeeded, with ids derived
 * from the incoming message's id, so a re-run after a crash publishes the same ids and
 * JetStream's de-duplication drops the repeats.
 */
import { createHash, randomBytes } from "node:crypto"
import { Address, type Envelope, type Message } from "../protocols/index.js"

/** One message to publish. */
export interface OutgoingMessage {
  readonly to: Address.Address
  readonly def: Message.MessageType
  readonly payload: unknown
  readonly envelope: Omit<Envelope.Envelope, "payload" | "type" | "v">
}

/** Deterministic child id: the same parent and index always give the same id. */
export const childId = (parentId: string, index: number | string): string =>
  createHash("sha256").update(`${parentId}#${index}`).digest("base64url").slice(0, 24)

/** A fresh random id for messages entering the system. */
export const freshId = (): string => randomBytes(16).toString("base64url")

const spanOf = (id: string) => createHash("sha1").update(id).digest("hex").slice(0, 16)

/** A new W3C traceparent for input that carries none. */
export const newTraceparent = (id: string): string =>
  `00-${randomBytes(16).toString("hex")}-${spanOf(id)}-01`

/** The traceparent of a child message: same trace, new span derived from the child id. */
export const childTraceparent = (parent: string, id: string): string => {
  const parts = parent.split("-")
  return `00-${parts[1] ?? randomBytes(16).toString("hex")}-${spanOf(id)}-01`
}

/** Collects outgoing messages caused by one incoming envelope. */
export class Outbox {
  readonly messages: Array<OutgoingMessage> = []
  constructor(
    readonly cause: Envelope.Envelope,
    readonly self: Address.Address
  ) {}

  /** Queues a message to `to` (an actor, agent or topic address). */
  send<A, I>(to: Address.Address, def: Message.MessageType<A, I>, payload: A): void {
    const id = childId(this.cause.id, this.messages.length)
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
        trace: { traceparent: childTraceparent(this.cause.trace.traceparent, id) }
      }
    })
  }
}
