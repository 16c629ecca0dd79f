/**
 * One subscription of one WebSocket client: an ephemeral JetStream ordered consumer filtered
 * on a subject of the client's tenant (a campaign's events
 * `<prefix>.<tenant>.evt.campaign.<campaignId>.>`, or a feed: the tenant's campaign starts or
 * dead letters) and started at the requested stream sequence, whose messages become frames
 * in stream order. Each frame written continues the envelope's trace in a `gateway.deliver`
 * span, so a trace follows a message from its origin across NATS hops to the dashboard.
 *
 * A client that has caught up joins the target's shared live tail (see `Fanout.ts`), so a
 * campaign followed by thousands of dashboards costs one consumer, not thousands.
 *
 * Backpressure: the consumer is read through its async iterator, never a callback. nats.js
 * queues each follow-up pull request *behind* the messages already received, so while this
 * loop waits for the socket to drain no new pull is sent and at most about `pullBatch`
 * messages sit in memory. Before every send the loop waits until the client's
 * `bufferedAmount` is under the limit; a client that stays over it for the slow timeout
 * fails the loop with `SlowClient`.
 */
import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream"
import { Deferred, Effect, Either, Exit } from "effect"
import { Decoder, Envelope, type Ids, Trace } from "../../protocols/index.js"
import * as Errors from "../Errors.js"
import type * as Frame from "../Frame.js"
import type * as Fanout from "./Fanout.js"

/** What a subscription needs from its connection. */
export interface Client {
  readonly tenant: Ids.TenantId
  /** Writes one frame; fails with `ClientGone` when the socket is no longer open. */
  readonly send: (frame: Frame.ServerFrameEncoded) => Effect.Effect<void, Errors.ClientGone>
  /** Completes once the client's queued bytes are under the limit; fails past the slow timeout. */
  readonly awaitWritable: Effect.Effect<void, Errors.SlowClient | Errors.ClientGone>
  /** Writes an encoded frame now unless the socket is closed or over its limit (then false). */
  readonly trySend: (frame: Buffer) => boolean
}

/** What one subscription reads and how it becomes frames. */
export interface Target {
  readonly js: JetStreamClient
  /** Name of the stream read. */
  readonly stream: string
  /** Filter subject (one, with wildcards: nats-server 2.9 has no multi-filter consumers). */
  readonly filter: string
  /** Messages pulled ahead per subscription. */
  readonly pullBatch: number
  /** Campaign id or feed name: names the subscription in logs and errors. */
  readonly key: string
  /** The frame announcing the subscription. */
  readonly subscribed: (fromSeq: number) => Frame.ServerFrameEncoded
  /** The frame of one stored message. */
  readonly frame: (seq: number, env: Envelope.Envelope) => Frame.ServerFrameEncoded
  /** Called after each frame is written (metrics: delivery latency from the envelope's `ts`). */
  readonly onSent?: (env: Envelope.Envelope, clients: number) => void
  /** The shared live tails; without one, every client reads on its own consumer. */
  readonly fanout?: Fanout.Fanout
}

const decodeEnvelope = Decoder.either(Envelope.Envelope)
const textDecoder = new TextDecoder("utf-8", { fatal: true })

/** Decodes a stored message as an envelope of the client's tenant, or says why it cannot be streamed. */
export const toEnvelope = (tenant: string, msg: Pick<JsMsg, "data" | "seq">): Either.Either<Envelope.Envelope, string> => {
  let json: unknown
  try {
    json = JSON.parse(textDecoder.decode(msg.data))
  } catch {
    return Either.left("not JSON")
  }
  const decoded = decodeEnvelope(json)
  if (Either.isLeft(decoded)) return Either.left("not a valid envelope")
  const env = decoded.right
  if (env.tenant !== tenant) return Either.left(`envelope tenant '${env.tenant}' differs from the subject's`)
  return Either.right(env)
}

/** Turns a stored event into an `event` frame of a campaign, or says why it cannot be streamed. */
export const toEventFrame = (
  tenant: string,
  campaignId: string,
  msg: Pick<JsMsg, "data" | "seq">
): Either.Either<Frame.ServerFrameEncoded, string> =>
  Either.map(toEnvelope(tenant, msg), (env) => eventFrame(campaignId)(msg.seq, env))

/** The `event` frame of a campaign's stored event. */
export const eventFrame = (campaignId: string) => (seq: number, env: Envelope.Envelope): Frame.ServerFrameEncoded => ({
  op: "event",
  campaignId,
  seq,
  type: env.type,
  id: env.id,
  ts: env.ts,
  payload: env.payload
})

/** Reads the target on the client's own consumer from `lastSeq + 1` until it can join the live tail. */
const catchUp = (client: Client, target: Target, from: number, isLive: () => boolean, attach: (lastSeq: number) => boolean) =>
  Effect.gen(function* () {
    let lastSeq = from
    const consumer = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          target.js.consumers.get(target.stream, {
            // a string, not an array: an array asks for `filter_subjects`, which 2.9 lacks
            filter_subjects: target.filter,
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: lastSeq + 1
          }),
        catch: Errors.subscription(target.key, "cannot create the event consumer")
      }),
      (c) =>
        Effect.promise(() => c.delete().catch(() => false)).pipe(Effect.timeout("2 seconds"), Effect.ignore)
    )
    const messages = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => consumer.consume({ max_messages: target.pullBatch }),
        catch: Errors.subscription(target.key, "cannot start the event consumer")
      }),
      (m) => Effect.sync(() => m.stop())
    )
    const info = yield* Effect.tryPromise({ try: () => consumer.info(true), catch: Errors.subscription(target.key, "cannot read the event consumer") })
    if (info.num_pending === 0 && attach(lastSeq)) return lastSeq
    const iterator = messages[Symbol.asyncIterator]()
    while (true) {
      const next = yield* Effect.tryPromise({
        try: () => iterator.next(),
        catch: Errors.subscription(target.key, "the event consumer failed")
      })
      if (next.done === true) {
        return yield* new Errors.SubscriptionError({ campaignId: target.key, message: "the event consumer stopped" })
      }
      const msg = next.value
      const env = toEnvelope(client.tenant, msg)
      if (Either.isLeft(env)) {
        yield* Effect.logWarning("skipping an event that cannot be streamed").pipe(
          Effect.annotateLogs({ seq: msg.seq, subject: msg.subject, reason: env.left })
        )
      } else {
        yield* client.awaitWritable
        if (!isLive()) return lastSeq
        const send = client.send(target.frame(msg.seq, env.right)).pipe(Effect.tap(() => target.onSent?.(env.right, 1)))
        yield* Trace.continueTrace(send, "gateway.deliver", env.right.trace.traceparent, {
          attributes: { "nexus.type": env.right.type, "nexus.message_id": env.right.id, "nexus.key": target.key }
        })
      }
      lastSeq = msg.seq
      if (msg.info.pending === 0 && attach(lastSeq)) return lastSeq
    }
  }).pipe(Effect.scoped)

/**
 * Streams the target's messages to the client from `fromSeq` until interrupted or failed:
 * first on its own consumer; once caught up, from the shared live tail (`Fanout`) if the
 * target has one; back to its own consumer whenever the tail lets it go (too slow).
 * `isLive` is checked right before each send so that no frame follows an unsubscribe.
 */
export const run = Effect.fn("Gateway.subscription")(
  function* (client: Client, target: Target, fromSeq: number, isLive: () => boolean) {
    yield* client.send(target.subscribed(fromSeq))
    let lastSeq = fromSeq - 1
    while (isLive()) {
      const released = yield* Deferred.make<void>()
      const attached: Fanout.Attached = {
        tenant: client.tenant,
        lastSeq,
        trySend: client.trySend,
        isLive,
        detached: () => Deferred.unsafeDone(released, Exit.void)
      }
      const fanout = target.fanout
      const attach = (seen: number) => {
        attached.lastSeq = seen
        return fanout !== undefined && fanout.attach(target, attached)
      }
      // straight onto the shared tail when it can take us from here (it then reads from
      // `lastSeq + 1`, as our own consumer would); otherwise catch up on our own first
      if (!attach(lastSeq)) lastSeq = yield* catchUp(client, target, lastSeq, isLive, attach)
      if (!isLive()) return
      // live: the tail writes; wait until it lets go (or this fiber is interrupted)
      yield* Deferred.await(released).pipe(Effect.ensuring(Effect.sync(() => fanout?.detach(target, attached))))
      lastSeq = attached.lastSeq
    }
  },
  (effect, _client, target, fromSeq) => Effect.annotateLogs(effect, { subscription: target.key, fromSeq })
)
