/**
 * One campaign subscription of one WebSocket client: an ephemeral JetStream ordered
 * consumer filtered on `<prefix>.<tenant>.evt.campaign.<campaignId>.>` and started at the
 * requested stream sequence, whose messages become `event` frames in stream order.
 *
 * Backpressure: the consumer is read through its async iterator, never a callback. nats.js
 * queues each follow-up pull request *behind* the messages already received, so while this
 * loop waits for the socket to drain no new pull is sent and at most about `pullBatch`
 * messages sit in memory. Before every send the loop waits until the client's
 * `bufferedAmount` is under the limit; a client that stays over it for the slow timeout
 * fails the loop with `SlowClient`.
 */
import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream"
import { Effect, Either, Schema } from "effect"
import { Envelope, type Ids } from "../../protocols/index.js"
import * as Errors from "../Errors.js"
import type * as Frame from "../Frame.js"

/** What a subscription needs from its connection. */
export interface Client {
  readonly tenant: Ids.TenantId
  /** Writes one frame; fails with `ClientGone` when the socket is no longer open. */
  readonly send: (frame: Frame.ServerFrameEncoded) => Effect.Effect<void, Errors.ClientGone>
  /** Completes once the client's queued bytes are under the limit; fails past the slow timeout. */
  readonly awaitWritable: Effect.Effect<void, Errors.SlowClient | Errors.ClientGone>
}

/** Where events are read from. */
export interface Source {
  readonly js: JetStreamClient
  /** Name of the events stream. */
  readonly stream: string
  /** Filter subject of one campaign's events for one tenant. */
  readonly filterOf: (tenant: string, campaignId: string) => string
  /** Messages pulled ahead per subscription. */
  readonly pullBatch: number
}

const decodeEnvelope = Schema.decodeUnknownEither(Envelope.Envelope)
const textDecoder = new TextDecoder("utf-8", { fatal: true })

/** Turns a stored event into an `event` frame, or says why it cannot be streamed. */
export const toEventFrame = (
  tenant: string,
  campaignId: string,
  msg: Pick<JsMsg, "data" | "seq">
): Either.Either<Frame.ServerFrameEncoded, string> => {
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
  return Either.right({ op: "event", campaignId, seq: msg.seq, type: env.type, id: env.id, ts: env.ts, payload: env.payload })
}

/**
 * Streams one campaign's events to the client from `fromSeq` until interrupted or failed.
 * `isLive` is checked right before each send so that no event follows an `unsubscribed`.
 */
export const run = Effect.fn("Gateway.subscription")(
  function* (client: Client, source: Source, campaignId: Ids.CampaignId, fromSeq: number, isLive: () => boolean) {
    const consumer = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          source.js.consumers.get(source.stream, {
            // a string, not an array: an array asks for `filter_subjects`, which 2.9 lacks
            filter_subjects: source.filterOf(client.tenant, campaignId),
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: fromSeq
          }),
        catch: Errors.subscription(campaignId, "cannot create the event consumer")
      }),
      (c) =>
        Effect.promise(() => c.delete().catch(() => false)).pipe(Effect.timeout("2 seconds"), Effect.ignore)
    )
    const messages = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => consumer.consume({ max_messages: source.pullBatch }),
        catch: Errors.subscription(campaignId, "cannot start the event consumer")
      }),
      (m) => Effect.sync(() => m.stop())
    )
    const iterator = messages[Symbol.asyncIterator]()
    yield* client.send({ op: "subscribed", campaignId, fromSeq })
    while (true) {
      const next = yield* Effect.tryPromise({
        try: () => iterator.next(),
        catch: Errors.subscription(campaignId, "the event consumer failed")
      })
      if (next.done === true) {
        return yield* new Errors.SubscriptionError({ campaignId, message: "the event consumer stopped" })
      }
      const frame = toEventFrame(client.tenant, campaignId, next.value)
      if (Either.isLeft(frame)) {
        yield* Effect.logWarning("skipping an event that cannot be streamed").pipe(
          Effect.annotateLogs({ seq: next.value.seq, subject: next.value.subject, reason: frame.left })
        )
        continue
      }
      yield* client.awaitWritable
      if (!isLive()) return
      yield* client.send(frame.right)
    }
  },
  Effect.scoped,
  (effect, _client, _source, campaignId, fromSeq) => Effect.annotateLogs(effect, { campaignId, fromSeq })
)
