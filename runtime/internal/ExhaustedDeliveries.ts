/**
 * Messages that ran out of deliveries. A delivery that is never acked (nak'd while what it
 * needed was unavailable, or handled on nodes that kept dying) is handed out at most
 * `max_deliver` times. After that JetStream neither delivers it again nor removes it from
 * its work queue: it would sit there unseen, holding its consumer's ack floor below it, and
 * whoever waits for what it carries (a contact for its draft, a campaign for its contacts)
 * would wait for ever.
 *
 * The server says so in an advisory; one node of the deployment takes each (a queue group)
 * and turns the message into a dead-letter record (reason `DeliveriesExhausted`, its bytes
 * and headers kept), sends a notice, then deletes the message from its stream. The notice
 * goes to the receiving actor, whose host handles the message from the record's copy, as
 * its last delivery (`lostOriginal`; skipped when the actor had applied it and only its
 * acks were lost). A message to an agent has no actor to take it up: the notice goes to
 * the actor it was sent by or for, whose `onDeadLetter` escalates as for any agent failure.
 *
 * Advisories are core NATS messages: one that no node receives (none running, or the one
 * that took it died at that moment) would leave its message where it was. Each node also
 * sweeps now and then (`sweep`): a consumer with nothing pending and nothing unacked that
 * still has a message of its own in its work queue, at or below what it has delivered, has
 * given up on it; the sweep handles it as its advisory would have. The record's id derives
 * from the stream and sequence, and the notice's key from them too, so handling a message
 * twice (an advisory and a sweep, two nodes) writes and tells once.
 */
import { type ConsumerInfo, type JetStreamManager, type MsgRequest, type NextMsgRequest, RetentionPolicy, type StoredMsg } from "@nats-io/jetstream"
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { Cause, Duration, Effect, Either, Runtime, Schedule, type Scope } from "effect"
import { Address, DeadLetter, type Message } from "../../protocols/index.js"
import { DeliveriesExhausted, describe } from "../Errors.js"
import { Outbox } from "../Outbox.js"
import type { Transport } from "./Transport.js"

/** The body of `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`. */
interface Advisory {
  readonly stream: string
  readonly consumer: string
  readonly stream_seq: number
  readonly deliveries: number
}

const isAdvisory = (u: unknown): u is Advisory => {
  const a = u as Partial<Advisory> | null
  return typeof a?.stream === "string" && typeof a.consumer === "string" && typeof a.stream_seq === "number" && typeof a.deliveries === "number"
}

/** The reason of the dead-letter records written here. */
const EXHAUSTED: DeliveriesExhausted["_tag"] = "DeliveriesExhausted"

/** The advisory subject of a stream's exhausted deliveries (every consumer). */
export const advisorySubject = (stream: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.*`

/** Dead-letters one exhausted message (see the module header); false if it was gone already. */
export const handle = (jsm: JetStreamManager, transport: Transport, advisory: Advisory) =>
  Effect.gen(function* () {
    const { stream, consumer, stream_seq: seq, deliveries } = advisory
    // gone: acked at the last moment, or handled before by another node
    const stored = yield* Effect.tryPromise(() => jsm.streams.getMessage(stream, { seq })).pipe(
      Effect.map((m): StoredMsg | null => m),
      Effect.catchAll(() => Effect.succeed(null))
    )
    if (stored === null) return false
    const decoded = transport.registry.decode(stored.data)
    const m = Either.getOrUndefined(decoded)
    const receiver = m?.envelope.to ?? `consumer:${consumer}`
    const error = new DeliveriesExhausted({
      consumer,
      deliveries,
      message: `${m?.type ?? "a message"} on ${stored.subject} was delivered ${deliveries} times and never acked; no more deliveries`
    })
    const record = yield* transport.deadLetter(
      { subject: stored.subject, data: stored.data, headers: stored.header, seq, info: { stream, deliveryCount: deliveries } },
      receiver,
      error,
      m
    )
    // a notice about a notice is never sent (an actor that cannot take notices would get them for ever)
    if (m !== undefined && m.type !== DeadLetter.DeadLettered.type) {
      const isActor = (a: Address.Address) => Address.parse(a).kind === "actor"
      const sender = m.envelope.replyTo ?? m.envelope.from
      const to = isActor(m.envelope.to) ? m.envelope.to : isActor(sender) ? sender : null
      if (to !== null) {
        const notice = new Outbox(m.envelope, m.envelope.to)
        notice.send(to, DeadLetter.DeadLettered, record, { key: `exhausted/${stream}/${seq}` })
        yield* transport.publish(notice.messages)
      }
    }
    yield* Effect.tryPromise(() => jsm.streams.deleteMessage(stream, seq, false))
    yield* Effect.logWarning(`${describe(error)}: dead-lettered (${stream} #${seq}, consumer ${consumer})`)
    return true
  })

/**
 * What an actor does with a dead-letter notice `m` about a message to it on `mailboxes` that
 * ran out of deliveries: `"applied"` when it had applied that message (`applied` says so of a
 * stream sequence), else the message itself to handle now, with its sequence. Null for any
 * other message.
 */
export const lostOriginal = (
  m: Message.Decoded,
  receiver: Address.Address,
  mailboxes: string,
  registry: Message.Registry,
  applied: (seq: number) => boolean
): { readonly message: Message.Decoded; readonly seq: number } | "applied" | null => {
  if (m.type !== DeadLetter.DeadLettered.type) return null
  const record = m.payload as DeadLetter.DeadLetterRecord
  if (record.reason !== EXHAUSTED || record.receiver !== receiver || record.stream !== mailboxes || record.streamSeq === null) return null
  if (applied(record.streamSeq)) return "applied"
  const original = registry.decode(Buffer.from(record.dataBase64, "base64"))
  return Either.isRight(original) && original.right.envelope.to === receiver ? { message: original.right, seq: record.streamSeq } : null
}

/**
 * Takes the advisories of the given streams in the deployment's queue group until the scope
 * closes. A failure is logged and the advisory dropped (the message stays where it was).
 */
export const watch = (
  nc: NatsConnection,
  jsm: JetStreamManager,
  transport: Transport,
  streams: ReadonlyArray<string>,
  queue: string
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const onAdvisory = (data: string) => {
      let advisory: unknown
      try {
        advisory = JSON.parse(data)
      } catch {
        advisory = null
      }
      if (!isAdvisory(advisory)) return void runFork(Effect.logWarning(`exhausted deliveries: an advisory not understood: ${data.slice(0, 200)}`))
      runFork(
        handle(jsm, transport, advisory).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning(`exhausted deliveries: ${advisory.stream} #${advisory.stream_seq} not dead-lettered: ${Cause.pretty(cause)}`)
          )
        )
      )
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => streams.map((s) => nc.subscribe(advisorySubject(s), { queue, callback: (_e, msg) => onAdvisory(msg.string()) }))),
      (subs: Array<Subscription>) => Effect.sync(() => subs.forEach((s) => s.unsubscribe()))
    )
  })

/** Messages one sweep looks at per consumer, at most. */
const SWEEP_LIMIT = 100

/**
 * The sequences of messages `consumer` of `stream` gave up on: only when it is idle (nothing
 * undelivered, nothing unacked: a message nak'd or waiting for redelivery counts as
 * unacked), its own messages still stored at or below the last it delivered. Checked again
 * afterwards: if the consumer moved meanwhile, none (the next sweep looks again).
 */
const givenUp = (jsm: JetStreamManager, stream: string, info: ConsumerInfo) =>
  Effect.gen(function* () {
    const idle = (i: ConsumerInfo) => i.num_pending === 0 && i.num_ack_pending === 0
    if (info.config.max_deliver === undefined || info.config.max_deliver <= 0 || !idle(info)) return []
    const filter = info.config.filter_subject ?? ">"
    const found: Array<number> = []
    let from = info.ack_floor.stream_seq + 1
    while (found.length < SWEEP_LIMIT) {
      // STREAM.MSG.GET takes `next_by_subj` (2.9+); the client passes it on, though its
      // type for this call names only the sequence and last-by-subject forms
      const request = { next_by_subj: filter, seq: from } as NextMsgRequest as unknown as MsgRequest
      const next = yield* Effect.tryPromise(() => jsm.streams.getMessage(stream, request)).pipe(
        Effect.map((m): StoredMsg | null => m),
        Effect.catchAll(() => Effect.succeed(null))
      )
      if (next === null || next.seq > info.delivered.stream_seq) break
      found.push(next.seq)
      from = next.seq + 1
    }
    if (found.length === 0) return []
    const again = yield* Effect.tryPromise(() => jsm.consumers.info(stream, info.name))
    return idle(again) && again.delivered.stream_seq === info.delivered.stream_seq ? found : []
  })

/** One sweep of the work-queue streams among `streams` (see the module header); returns how many messages it dead-lettered. */
export const sweep = (jsm: JetStreamManager, transport: Transport, streams: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    let n = 0
    for (const stream of streams) {
      // only a work queue deletes what is acked, so only there does a stored message mean one
      // not acked (the streams the runtime consumes are work queues; this keeps it so)
      const { config } = yield* Effect.tryPromise(() => jsm.streams.info(stream))
      if (config.retention !== RetentionPolicy.Workqueue) continue
      const consumers = yield* Effect.tryPromise(async () => {
        const all: Array<ConsumerInfo> = []
        for await (const c of jsm.consumers.list(stream)) all.push(c)
        return all
      })
      for (const info of consumers) {
        for (const seq of yield* givenUp(jsm, stream, info)) {
          if (yield* handle(jsm, transport, { stream, consumer: info.name, stream_seq: seq, deliveries: info.config.max_deliver! })) n++
        }
      }
    }
    return n
  })

/** Sweeps `streams` every `every` (jittered) until the scope closes; a failed sweep is logged. */
export const sweepEvery = (
  jsm: JetStreamManager,
  transport: Transport,
  streams: ReadonlyArray<string>,
  every: Duration.DurationInput
): Effect.Effect<void, never, Scope.Scope> =>
  sweep(jsm, transport, streams).pipe(
    Effect.catchAllCause((cause) => Effect.logWarning(`exhausted deliveries: sweep failed: ${Cause.pretty(cause)}`)),
    Effect.delay(every),
    Effect.repeat(Schedule.spaced(every).pipe(Schedule.jittered)),
    Effect.forkScoped,
    Effect.asVoid
  )
