/**
 * One authenticated WebSocket client: decodes its frames (at most `maxFramesPerSecond`,
 * a token bucket), answers pings, starts and stops its subscriptions (one fiber each, in a
 * map keyed by campaign id or `feed:<name>`, so a second `subscribe` to the same
 * campaign replaces the first), and closes it when it is too slow (4008), floods (1008),
 * its token expires (4001) or the gateway stops (1001). Refused frames get an error frame
 * and a dead-letter record. The connection fiber lives until the socket closes; its scope
 * stops every subscription's consumer.
 *
 * `ws` has no drain event of its own, so the wait for a slow client to drain polls
 * `bufferedAmount` (every few milliseconds, only while the client is over the limit).
 */
import { Deferred, Duration, Effect, Either, Exit, Fiber, Runtime } from "effect"
import { WebSocket } from "ws"
import type { Principal } from "../Auth.js"
import * as Errors from "../Errors.js"
import * as Frame from "../Frame.js"
import type { GatewaySettings } from "../GatewayConfig.js"
import * as Subscription from "./Subscription.js"

/** Close code sent to a client that stayed slow past the limit. */
export const SLOW_CONSUMER = 4008
/** Close code sent to a client whose token expired. */
export const TOKEN_EXPIRED = 4001
/** Close code sent to a client that keeps sending faster than the rate limit. */
export const POLICY_VIOLATION = 1008
/** Close code sent to every client when the gateway stops. */
export const GOING_AWAY = 1001
/** How long a client gets to answer the close handshake at shutdown before it is cut. */
const SHUTDOWN_GRACE = Duration.seconds(1)

/** What a connection needs from the gateway. */
export interface Deps {
  readonly settings: GatewaySettings
  /** What a campaign subscription reads. */
  readonly campaign: (tenant: string, campaignId: string) => Subscription.Target
  /** What a feed reads. */
  readonly feed: (tenant: string, feed: Frame.Feed) => Subscription.Target
  /** Records a refused frame as a dead letter (never fails). */
  readonly refused: (tenant: string, error: Errors.FrameRejected, data: Uint8Array) => void
  /** Counts frames: received, refused (by code), rate-limited. */
  readonly count: (what: "received" | "rate_limited" | Errors.ErrorCode) => void
  /** Connections being served (not closing); the connection removes itself when it closes. */
  readonly live: Set<WebSocket>
}

const toBytes = (raw: WebSocket.RawData): Uint8Array =>
  Array.isArray(raw) ? Buffer.concat(raw) : raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw

/** Serves one accepted WebSocket until it closes (or the gateway interrupts it). */
export const serve = Effect.fn("Gateway.connection")(
  function* (ws: WebSocket, principal: Principal, deps: Deps) {
    const { settings, live } = deps
    const tenant = principal.tenant
    const limit = settings.maxBufferedBytes
    const slowMs = Duration.toMillis(settings.slowClientTimeout)
    const pollMs = Math.max(1, Math.min(20, Math.floor(slowMs / 20)))
    const closed = yield* Deferred.make<void>()
    // plain timers, not fibers: a connection costs one waiting fiber, whatever it does
    const timers: Array<NodeJS.Timeout> = []
    const later = (ms: number, f: () => void) => void timers.push(setTimeout(f, Math.max(0, Math.min(ms, 2 ** 31 - 1))))
    // plain maps and one runtime rather than FiberMap/FiberSet: thousands of connections each
    // hold these, and every runtime copy costs memory
    const runTask = Runtime.runFork(yield* Effect.runtime<never>())
    const subscriptions = new Map<string, Fiber.RuntimeFiber<void, never>>()
    const runSubscription = (key: string, program: Effect.Effect<void>) => {
      const previous = subscriptions.get(key)
      if (previous !== undefined) runTask(Fiber.interrupt(previous))
      const fiber = runTask(program)
      subscriptions.set(key, fiber)
      fiber.addObserver(() => subscriptions.get(key) === fiber && subscriptions.delete(key))
    }
    yield* Effect.addFinalizer(() => Fiber.interruptAll(subscriptions.values()))
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
        // it gets the slow timeout again to read its backlog and the close frame
        later(slowMs, () => ws.terminate())
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
      awaitWritable,
      trySend: (frame) => {
        if (!isOpen() || ws.bufferedAmount > limit) return false
        ws.send(frame, { binary: false })
        return true
      }
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

    /** Starts (or restarts) the subscription `key`; errors are reported with `about`. */
    const start = (
      key: string,
      target: Subscription.Target,
      fromSeq: number,
      about: { readonly campaignId?: string; readonly feed?: Frame.Feed }
    ) => {
      if (!runs.has(key) && runs.size >= settings.maxSubscriptions) {
        return reply(Frame.errorFrame("too_many_subscriptions", `at most ${settings.maxSubscriptions} subscriptions per connection`, about.campaignId, about.feed))
      }
      const previous = runs.get(key)
      if (previous !== undefined) previous.live = false
      const current = { live: true }
      runs.set(key, current)
      const program = Subscription.run(client, target, fromSeq, () => current.live).pipe(
        Effect.catchTags({
          SubscriptionError: (e) =>
            Effect.logWarning("subscription failed", e).pipe(
              Effect.andThen(() => write(Frame.errorFrame("subscription_failed", e.message, about.campaignId, about.feed)))
            ),
          SlowClient: closeSlow,
          ClientGone: () => Effect.void
        }),
        Effect.ensuring(Effect.sync(() => runs.get(key) === current && runs.delete(key)))
      )
      runSubscription(key, program)
    }

    /** Stops the subscription `key`; false when there was none. */
    const stop = (key: string): boolean => {
      const current = runs.get(key)
      if (current === undefined) return false
      current.live = false
      runs.delete(key)
      const fiber = subscriptions.get(key)
      subscriptions.delete(key)
      if (fiber !== undefined) runTask(Fiber.interrupt(fiber))
      return true
    }

    const subscribe = (frame: Frame.Subscribe) =>
      start(frame.campaignId, deps.campaign(tenant, frame.campaignId), frame.fromSeq ?? 1, { campaignId: frame.campaignId })

    const unsubscribe = (frame: Frame.Unsubscribe) =>
      stop(frame.campaignId)
        ? reply({ op: "unsubscribed", campaignId: frame.campaignId })
        : reply(Frame.errorFrame("not_subscribed", "not subscribed to this campaign", frame.campaignId))

    const watch = (frame: Frame.Watch) =>
      start(`feed:${frame.feed}`, deps.feed(tenant, frame.feed), frame.fromSeq ?? 1, { feed: frame.feed })

    const unwatch = (frame: Frame.Unwatch) =>
      stop(`feed:${frame.feed}`)
        ? reply({ op: "unwatched", feed: frame.feed })
        : reply(Frame.errorFrame("not_subscribed", "not watching this feed", undefined, frame.feed))

    // token bucket: `rate` frames per second, burst `rate`; dropped frames over 2 × rate in a
    // second close the connection
    const rate = settings.maxFramesPerSecond
    let tokens = rate
    let refilledAt = Date.now()
    let dropped = 0
    let droppedSince = refilledAt
    let warnedAt = 0
    const admit = (): boolean => {
      const now = Date.now()
      tokens = Math.min(rate, tokens + ((now - refilledAt) / 1000) * rate)
      refilledAt = now
      if (tokens >= 1) {
        tokens -= 1
        return true
      }
      if (now - droppedSince > 1000) {
        dropped = 0
        droppedSince = now
      }
      dropped++
      deps.count("rate_limited")
      if (dropped > 2 * rate && isOpen()) {
        live.delete(ws)
        ws.close(POLICY_VIOLATION, "rate limit exceeded")
      } else if (now - warnedAt > 1000) {
        warnedAt = now
        reply(Frame.errorFrame("rate_limited", `at most ${rate} frames per second; frame dropped`))
      }
      return false
    }

    ws.on("message", (raw, isBinary) => {
      deps.count("received")
      if (!admit()) return
      const bytes = toBytes(raw)
      const decoded = Frame.decodeClient(bytes, isBinary, settings.maxFrameBytes)
      if (Either.isLeft(decoded)) {
        deps.count(decoded.left.code)
        deps.refused(tenant, decoded.left, bytes)
        return reply(Frame.errorFrame(decoded.left.code, decoded.left.message))
      }
      const frame = decoded.right
      switch (frame.op) {
        case "ping":
          return reply({ op: "pong" })
        case "subscribe":
          return subscribe(frame)
        case "unsubscribe":
          return unsubscribe(frame)
        case "watch":
          return watch(frame)
        case "unwatch":
          return unwatch(frame)
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
    // a token is valid until its `exp`, not for the life of the connection
    later(principal.expiresAt - Date.now(), () => {
      live.delete(ws)
      if (isOpen()) ws.close(TOKEN_EXPIRED, "token expired")
      later(Duration.toMillis(SHUTDOWN_GRACE), () => ws.terminate())
    })
    yield* Deferred.await(closed).pipe(Effect.ensuring(Effect.sync(() => timers.forEach(clearTimeout))))
  },
  Effect.scoped,
  (effect, _ws, principal) => Effect.annotateLogs(effect, { tenant: principal.tenant, sub: principal.sub })
)
