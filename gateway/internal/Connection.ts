/**
 * One WebSocket client: decodes its frames, answers pings, starts and stops its campaign
 * subscriptions (one fiber each, in a `FiberMap` keyed by campaign id, so a second
 * `subscribe` to the same campaign replaces the first), and closes it when it is too slow
 * (4008) or when the gateway stops (1001). The connection fiber lives until the socket
 * closes; its scope stops every subscription's consumer.
 *
 * `ws` has no drain event of its own, so the wait for a slow client to drain polls
 * `bufferedAmount` (every few milliseconds, only while the client is over the limit).
 */
import { Deferred, Duration, Effect, Either, Exit, FiberMap, FiberSet } from "effect"
import { WebSocket } from "ws"
import type { Ids } from "../../protocols/index.js"
import * as Errors from "../Errors.js"
import * as Frame from "../Frame.js"
import type { GatewaySettings } from "../GatewayConfig.js"
import * as Subscription from "./Subscription.js"

/** Close code sent to a client that stayed slow past the limit. */
export const SLOW_CONSUMER = 4008
/** Close code sent to every client when the gateway stops. */
export const GOING_AWAY = 1001
/** How long a client gets to answer the close handshake at shutdown before it is cut. */
const SHUTDOWN_GRACE = Duration.seconds(1)

/** What a connection needs from the gateway. */
export interface Deps {
  readonly settings: GatewaySettings
  readonly source: Subscription.Source
  /** Connections being served (not closing); the connection removes itself when it closes. */
  readonly live: Set<WebSocket>
}

const toBytes = (raw: WebSocket.RawData): Uint8Array =>
  Array.isArray(raw) ? Buffer.concat(raw) : raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw

/** Serves one accepted WebSocket until it closes (or the gateway interrupts it). */
export const serve = Effect.fn("Gateway.connection")(
  function* (ws: WebSocket, tenant: Ids.TenantId, deps: Deps) {
    const { settings, live } = deps
    const limit = settings.maxBufferedBytes
    const slowMs = Duration.toMillis(settings.slowClientTimeout)
    const pollMs = Math.max(1, Math.min(20, Math.floor(slowMs / 20)))
    const closed = yield* Deferred.make<void>()
    const slow = yield* Deferred.make<Errors.SlowClient>()
    const subscriptions = yield* FiberMap.make<string>()
    const runSubscription = yield* FiberMap.runtime(subscriptions)<never>()
    const runTask = yield* FiberSet.makeRuntime<never>()
    // the current run of each subscription; cleared synchronously so nothing follows `unsubscribed`
    const runs = new Map<string, { live: boolean }>()

    const isOpen = () => ws.readyState === WebSocket.OPEN
    const isClosed = () => ws.readyState === WebSocket.CLOSED
    const gone = () => new Errors.ClientGone({ message: "the socket is closed" })
    const write = (frame: Frame.ServerFrameEncoded) => {
      if (isOpen()) ws.send(Frame.encodeServer(frame))
    }

    const closeSlow = (e: Errors.SlowClient) =>
      Effect.suspend(() => {
        if (!isOpen()) return Effect.void
        live.delete(ws)
        ws.close(SLOW_CONSUMER, "slow consumer")
        Deferred.unsafeDone(slow, Exit.succeed(e))
        return Effect.logWarning("closing a slow client").pipe(
          Effect.annotateLogs({ bufferedBytes: e.bufferedBytes, limit: e.limit, waitedMs: e.waitedMs })
        )
      })

    const waitDrained = Effect.gen(function* () {
      while (isOpen() && ws.bufferedAmount > limit) yield* Effect.sleep(pollMs)
      if (!isOpen()) return yield* gone()
    })
    const awaitWritable: Subscription.Client["awaitWritable"] = Effect.suspend(() => {
      if (!isOpen()) return Effect.fail(gone())
      if (ws.bufferedAmount <= limit) return Effect.void
      return waitDrained.pipe(
        Effect.timeoutFail({
          duration: settings.slowClientTimeout,
          onTimeout: () =>
            new Errors.SlowClient({
              bufferedBytes: ws.bufferedAmount,
              limit,
              waitedMs: slowMs,
              message: `client kept more than ${limit} bytes queued for ${slowMs} ms`
            })
        })
      )
    })

    const client: Subscription.Client = {
      tenant,
      send: (frame) => (isOpen() ? Effect.sync(() => write(frame)) : Effect.fail(gone())),
      awaitWritable
    }

    // Replies to control frames are small but unbounded in number: while the client is
    // over the limit, stop reading its frames until it drains (or is closed as slow).
    const reply = (frame: Frame.ServerFrameEncoded) => {
      write(frame)
      if (!isOpen() || ws.bufferedAmount <= limit || ws.isPaused) return
      ws.pause()
      runTask(
        awaitWritable.pipe(
          Effect.tap(() => Effect.sync(() => ws.resume())),
          Effect.catchTag("SlowClient", closeSlow),
          Effect.ignore
        )
      )
    }

    const subscribe = (frame: Frame.Subscribe) => {
      const { campaignId } = frame
      if (!runs.has(campaignId) && runs.size >= settings.maxSubscriptions) {
        return reply(
          Frame.errorFrame("too_many_subscriptions", `at most ${settings.maxSubscriptions} subscriptions per connection`, campaignId)
        )
      }
      const previous = runs.get(campaignId)
      if (previous !== undefined) previous.live = false
      const current = { live: true }
      runs.set(campaignId, current)
      const program = Subscription.run(client, deps.source, campaignId, frame.fromSeq ?? 1, () => current.live).pipe(
        Effect.catchTags({
          SubscriptionError: (e) =>
            Effect.logWarning("subscription failed", e).pipe(
              Effect.andThen(() => write(Frame.errorFrame("subscription_failed", e.message, campaignId)))
            ),
          SlowClient: closeSlow,
          ClientGone: () => Effect.void
        }),
        Effect.ensuring(Effect.sync(() => runs.get(campaignId) === current && runs.delete(campaignId)))
      )
      runSubscription(campaignId, program)
    }

    const unsubscribe = (frame: Frame.Unsubscribe) => {
      const current = runs.get(frame.campaignId)
      if (current === undefined) {
        return reply(Frame.errorFrame("not_subscribed", "not subscribed to this campaign", frame.campaignId))
      }
      current.live = false
      runs.delete(frame.campaignId)
      Effect.runFork(FiberMap.remove(subscriptions, frame.campaignId))
      reply({ op: "unsubscribed", campaignId: frame.campaignId })
    }

    ws.on("message", (raw, isBinary) => {
      const decoded = Frame.decodeClient(toBytes(raw), isBinary, settings.maxFrameBytes)
      if (Either.isLeft(decoded)) return reply(Frame.errorFrame(decoded.left.code, decoded.left.message))
      const frame = decoded.right
      switch (frame.op) {
        case "ping":
          return reply({ op: "pong" })
        case "subscribe":
          return subscribe(frame)
        case "unsubscribe":
          return unsubscribe(frame)
      }
    })
    ws.on("close", () => {
      live.delete(ws)
      Deferred.unsafeDone(closed, Exit.void)
    })
    // socket errors (reset, oversized frame…) are followed by `close`; nothing to do here
    ws.on("error", () => {})

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        live.delete(ws)
        if (isClosed()) return
        if (isOpen()) ws.close(GOING_AWAY, "gateway stopping")
        yield* Deferred.await(closed).pipe(Effect.timeout(SHUTDOWN_GRACE), Effect.ignore)
        if (!isClosed()) ws.terminate()
      })
    )

    if (!isOpen()) return
    live.add(ws)
    // a slow client gets the slow timeout again to read its backlog and the close frame
    const cutSlow = Deferred.await(slow).pipe(
      Effect.zipRight(Effect.sleep(settings.slowClientTimeout)),
      Effect.zipRight(Effect.sync(() => ws.terminate())),
      Effect.zipRight(Deferred.await(closed))
    )
    yield* Effect.raceFirst(Deferred.await(closed), cutSlow)
  },
  Effect.scoped,
  (effect, _ws, tenant) => Effect.annotateLogs(effect, { tenant })
)
