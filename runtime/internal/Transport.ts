/**
 * The runtime's edge to JetStream: decoding deliveries, publishing outboxes with
 * de-duplication ids, and writing dead-letter records that keep the original bytes.
 */
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream"
import { Effect, Either } from "effect"
import type * as AckedPublisher from "../../nats/AckedPublisher.js"
import { Address, DeadLetter, Errors as ProtocolErrors, Ids, type Message, type Subjects } from "../../protocols/index.js"
import { describe, PublishFailed, tagOf } from "../Errors.js"
import type { Counters } from "../Metrics.js"
import { childId, newTraceparent, type OutgoingMessage } from "../Outbox.js"

const tokenRe = /^[A-Za-z0-9_-]{1,64}$/

/** An outgoing message in its wire form: where it goes, its de-duplication id, its JSON text. */
export interface Wire {
  readonly subject: string
  readonly id: string
  readonly json: string
}

/**
 * What a dead-letter record keeps of a message: a delivery (`JsMsg` has this shape), or a
 * message read back from its stream.
 */
export interface Undeliverable {
  readonly subject: string
  readonly data: Uint8Array
  readonly headers?: { keys(): Array<string>; values(k: string): Array<string> } | undefined
  readonly seq?: number
  readonly info?: { readonly stream: string; readonly deliveryCount: number }
}

/** Publishing and dead-lettering for one node. */
export interface Transport {
  readonly subjects: Subjects.Subjects
  readonly registry: Message.Registry
  readonly counters: Counters
  /** A round trip to the server: resolves once it has processed everything this node sent before (see `Consumption.BoundedOptions.ping`). */
  readonly ping: () => Promise<void>
  /** Decodes a delivery and checks that the subject's tenant is the envelope's tenant. */
  readonly decode: (msg: JsMsg) => Either.Either<Message.Decoded, ProtocolErrors.DecodeError>
  /** Publishes every outgoing message, many in flight; resolves when all are stored. */
  readonly publish: (messages: ReadonlyArray<OutgoingMessage>) => Effect.Effect<void, PublishFailed>
  /** The wire form of outgoing messages (to keep in an actor's committed state before publishing). */
  readonly wire: (messages: ReadonlyArray<OutgoingMessage>) => Array<Wire>
  /** Publishes messages in wire form, many in flight; resolves when all are stored. */
  readonly publishWire: (messages: ReadonlyArray<Wire>) => Effect.Effect<void, PublishFailed>
  /** Records a dead letter for a delivery (the original bytes and headers are kept). */
  readonly deadLetter: (
    msg: Undeliverable,
    receiver: string,
    error: unknown,
    decoded?: Message.Decoded
  ) => Effect.Effect<typeof DeadLetter.DeadLettered.payload.Type, PublishFailed>
}

/** Builds the transport. */
export const make = (
  js: JetStreamClient,
  publisher: AckedPublisher.AckedPublisher,
  subjects: Subjects.Subjects,
  registry: Message.Registry,
  counters: Counters,
  ping: () => Promise<void>
): Transport => {
  const textEncoder = new TextEncoder()
  const wire = (messages: ReadonlyArray<OutgoingMessage>): Array<Wire> =>
    messages.map((out) => ({
      subject: subjects.route(out.envelope.tenant, Address.parse(out.to), out.def.type),
      id: out.envelope.id,
      json: registry.encodeJson(out.envelope, out.def, out.payload)
    }))

  const publishAll = async (messages: ReadonlyArray<Wire>) => {
    const acks = await Promise.all(messages.map((w) => publisher.publish(w.subject, textEncoder.encode(w.json), w.id)))
    counters.published += acks.length
    for (const ack of acks) if (ack.duplicate) counters.duplicatesSuppressed++
  }

  const publishWire = (messages: ReadonlyArray<Wire>) =>
    messages.length === 0
      ? Effect.void
      : Effect.tryPromise({
          try: () => publishAll(messages),
          catch: (cause) =>
            new PublishFailed({
              subject: [...new Set(messages.map((m) => m.subject))].join(","),
              message: `publish of ${messages.length} message(s) failed: ${describe(cause)}`,
              cause
            })
        })

  const publish = (messages: ReadonlyArray<OutgoingMessage>) => (messages.length === 0 ? Effect.void : publishWire(wire(messages)))

  const decode = (msg: JsMsg) => {
    const decoded = registry.decode(msg.data)
    if (Either.isLeft(decoded)) return decoded
    const subjectTenant = msg.subject.split(".")[1]
    if (subjectTenant !== decoded.right.envelope.tenant) {
      return Either.left(
        new ProtocolErrors.Unauthorized({
          message: `envelope tenant '${decoded.right.envelope.tenant}' does not match subject tenant '${subjectTenant}'`
        })
      )
    }
    return decoded
  }

  const deadLetter = (msg: Undeliverable, receiver: string, error: unknown, decoded?: Message.Decoded) => {
    const token = msg.subject.split(".")[1] ?? ""
    const tenant = decoded?.envelope.tenant ?? (tokenRe.test(token) ? token : "_unknown")
    const reason = tagOf(error)
    const headers: Record<string, Array<string>> = {}
    if (msg.headers) for (const k of msg.headers.keys()) headers[k] = msg.headers.values(k)
    const record = {
      reason,
      error: { _tag: reason, message: describe(error) },
      receiver,
      subject: msg.subject,
      stream: msg.info?.stream ?? null,
      streamSeq: msg.seq ?? null,
      deliveries: msg.info?.deliveryCount ?? 1,
      originalType: decoded?.type ?? null,
      originalId: decoded?.envelope.id ?? null,
      headers,
      dataBase64: Buffer.from(msg.data).toString("base64"),
      at: Date.now()
    }
    const id = childId(`${msg.info?.stream}:${msg.seq}`, "dead-letter")
    const envelope = {
      id: id as never,
      tenant: Ids.TenantId.make(tenant),
      from: Address.ext("runtime"),
      to: Address.ext("dead-letters"),
      correlationId: decoded?.envelope.correlationId ?? id,
      causationId: decoded?.envelope.id ?? null,
      ts: Date.now(),
      trace: decoded ? { traceparent: decoded.envelope.trace.traceparent } : { traceparent: newTraceparent(id) }
    }
    return Effect.tryPromise({
      try: () =>
        js.publish(subjects.deadLetter(tenant, reason), registry.encode(envelope, DeadLetter.DeadLettered, record), {
          msgID: id
        }),
      catch: (cause) => new PublishFailed({ subject: "dead-letter", message: `dead-letter publish failed: ${describe(cause)}`, cause })
    }).pipe(
      Effect.tap(() => Effect.sync(() => void counters.deadLetters++)),
      Effect.as(record)
    )
  }

  return { subjects, registry, counters, ping, decode, publish, wire, publishWire, deadLetter }
}
