/**
 * The gateway as a scoped service: a node `http` server with
 * - a `ws` WebSocket endpoint on `/ws` for authenticated clients (JWT in
 *   `Authorization: Bearer` or `?token=`; the tenant is the token's), streaming campaign
 *   events and tenant feeds from JetStream in stream order, resumable from any sequence
 *   (protocol in `Frame.ts`; clients that caught up share one live consumer per campaign or
 *   feed, see `internal/Fanout.ts`), with heartbeats (a ping every `heartbeatInterval`; a client
 *   that missed the previous pong is cut) and per-connection frame size and rate limits;
 * - the HTTP routes of `internal/Http.ts`: health, Prometheus metrics (its own and every
 *   runtime node's), the AsyncAPI document, the dashboard, the command API and the Vapi
 *   webhook.
 *
 * Acquire listens (on `GatewayConfig.port`; 0 picks a free port, exposed as `port`).
 * Release stops accepting, closes every client with 1001 (stopping and deleting their
 * consumers), cuts clients that do not answer within a second, and closes the server.
 *
 * Memory per client is bounded by `maxBufferedBytes` + one event per subscription (queued
 * in the socket) + about `pullBatch` events per subscription (pulled from JetStream); a
 * client above `maxBufferedBytes` for `slowClientTimeout` is closed with 4008.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Duration, Effect, FiberSet, Layer, type Scope } from "effect"
import { type WebSocket, WebSocketServer } from "ws"
import { Subjects } from "../protocols/index.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import * as Auth from "./Auth.js"
import * as Errors from "./Errors.js"
import { GatewayConfig } from "./GatewayConfig.js"
import * as Api from "./internal/Api.js"
import * as Connection from "./internal/Connection.js"
import * as DeadLetters from "./internal/DeadLetters.js"
import * as Http from "./internal/Http.js"
import { Fanout } from "./internal/Fanout.js"
import { GatewayMetrics } from "./internal/Metrics.js"
import * as Static from "./internal/Static.js"
import * as Targets from "./internal/Targets.js"

/** The running gateway. */
export interface GatewayService {
  /** The bound TCP port (the real one when `GATEWAY_PORT` is 0). */
  readonly port: number
  /** The WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws` (add `?token=<jwt>` or send `Authorization`). */
  readonly url: string
  /** The HTTP base URL, e.g. `http://127.0.0.1:8080` (dashboard, API, health, metrics). */
  readonly httpUrl: string
  /** WebSocket clients being served (closing ones excluded). */
  readonly connections: () => number
  /** Bytes queued towards all clients, closing ones included (`ws.bufferedAmount` summed). */
  readonly bufferedBytes: () => number
  /** The Prometheus text `/metrics` answers. */
  readonly metrics: () => string
}

/** The gateway service. */
export class Gateway extends Context.Tag("nexus/Gateway")<Gateway, GatewayService>() {}

const displayHost = (host: string): string => {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1"
  if (host === "::") return "[::1]"
  return host.includes(":") ? `[${host}]` : host
}

/** Starts the gateway; stops it when the scope closes. */
export const make: Effect.Effect<
  GatewayService,
  Errors.GatewayListenError,
  GatewayConfig | NatsClient | NatsConfig | Auth.Auth | Scope.Scope
> = Effect.gen(function* () {
  const settings = yield* GatewayConfig
  const auth = yield* Auth.Auth
  const { nc, js, jsm } = yield* NatsClient
  const natsSettings = yield* NatsConfig
  const subjects = Subjects.make(natsSettings.prefix, natsSettings.partitions)

  const live = new Set<WebSocket>()
  const server = http.createServer()
  const wss = new WebSocketServer({
    noServer: true,
    // frames between maxFrameBytes and this hard cap get an error frame; larger ones close with 1009
    maxPayload: Math.max(4 * settings.maxFrameBytes, 1024 * 1024),
    perMessageDeflate: false
  })
  const bufferedBytes = () => {
    let total = 0
    for (const ws of wss.clients) total += ws.bufferedAmount
    return total
  }
  const metrics: GatewayMetrics = new GatewayMetrics(() => ({
    nexus_gateway_connections: { help: "WebSocket clients being served.", value: live.size },
    nexus_gateway_buffered_bytes: { help: "Bytes queued towards all WebSocket clients.", value: bufferedBytes() },
    nexus_gateway_nodes: { help: "Runtime nodes with a fresh metrics report.", value: metrics.liveNodes().length },
    nexus_gateway_live_tails: { help: "Shared live consumers (one per followed campaign or feed).", value: fanout.size() },
    nexus_gateway_live_subscriptions: { help: "Subscriptions served from a shared live consumer.", value: fanout.attached() }
  }))
  metrics.listen(nc, subjects)
  yield* Effect.addFinalizer(() => Effect.sync(() => metrics.close()))
  const deadLetters = DeadLetters.make(js, jsm, subjects)
  const tasks = yield* FiberSet.make()
  const run = yield* FiberSet.runtime(tasks)<never>()
  const fanout: Fanout = new Fanout((effect) => void run(effect as Effect.Effect<unknown, never>))
  const deps: Connection.Deps = {
    settings,
    live,
    ...Targets.make(js, subjects, settings.pullBatch, (env, n) => metrics.observeDelivery(Math.max(0, Date.now() - env.ts) / 1000, n), fanout),
    refused: (tenant, error, data) =>
      void run(
        deadLetters.record(tenant, {
          reason: error.code === "frame_too_large" ? "Oversized" : "InvalidFrame",
          message: `${error.code}: ${error.message}`,
          receiver: "ext:gateway-ws",
          subject: "ws:frame",
          originalType: null,
          data
        })
      ),
    count: (what) => metrics.inc("nexus_gateway_ws_frames_total", "WebSocket client frames by outcome.", { outcome: what })
  }
  const router: Http.RouterDeps = {
    api: { js, subjects, auth, deadLetters, metrics, maxBodyBytes: settings.maxBodyBytes },
    webhooks: { js, jsm, subjects, secret: settings.vapiSecret, deadLetters, metrics, maxBodyBytes: settings.maxBodyBytes },
    metrics,
    ready: Http.readiness(nc, jsm, [subjects.streams.events, subjects.streams.commands, subjects.streams.deadLetters]),
    serveStatic: Static.make(subjects.prefix)
  }
  let accepting = true

  server.on("request", (req, res) => void run(Http.route(router, req, res)))
  server.on("upgrade", (req: http.IncomingMessage, socket, head) => {
    socket.on("error", () => socket.destroy())
    if (!accepting) return Http.refuseUpgrade(socket, 503, "unavailable", "the gateway is stopping")
    if (!Http.isWsPath(req)) return Http.refuseUpgrade(socket, 404, "not_found", `WebSocket endpoint is ${Http.WS_PATH}`)
    const asked = new URL(req.url ?? "/", "http://gateway").searchParams.get("tenant")
    run(
      Api.authenticate(auth, req).pipe(
        Effect.match({
          onFailure: (e) => {
            metrics.inc("nexus_gateway_auth_refused_total", "Requests and upgrades refused for their token.", { reason: e.reason })
            Http.refuseUpgrade(socket, 401, "unauthenticated", e.message)
          },
          onSuccess: (principal) => {
            if (asked !== null && asked !== principal.tenant) {
              return Http.refuseUpgrade(socket, 403, "forbidden", "the token's tenant differs from the requested tenant")
            }
            if (socket.destroyed || !accepting) return
            wss.handleUpgrade(req, socket, head, (ws) => {
              ws.on("pong", () => awaitingPong.delete(ws))
              run(Connection.serve(ws, principal, deps))
            })
          }
        })
      )
    )
  })

  // heartbeats: one sweep for all clients; a client still owing the previous pong is cut
  const awaitingPong = new WeakSet<WebSocket>()
  yield* FiberSet.run(
    tasks,
    Effect.sync(() => {
      for (const ws of wss.clients) {
        if (awaitingPong.has(ws)) {
          metrics.inc("nexus_gateway_heartbeat_timeouts_total", "WebSocket clients cut for not answering pings.")
          live.delete(ws)
          ws.terminate()
          continue
        }
        awaitingPong.add(ws)
        ws.ping()
      }
    }).pipe(Effect.delay(settings.heartbeatInterval), Effect.forever)
  )

  const port = yield* Effect.acquireRelease(
    Effect.async<number, Errors.GatewayListenError>((resume) => {
      const onError = (cause: unknown) => resume(Effect.fail(Errors.listen(settings.host, settings.port)(cause)))
      server.once("error", onError)
      server.listen(settings.port, settings.host, () => {
        server.removeListener("error", onError)
        resume(Effect.succeed((server.address() as AddressInfo).port))
      })
    }),
    () =>
      Effect.gen(function* () {
        accepting = false
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        // shared tails first (so that no client falls back to a consumer of its own), then
        // the connections: interrupting one closes it with 1001 and stops its consumers
        yield* fanout.close()
        yield* FiberSet.clear(tasks)
        yield* fanout.close()
        for (const ws of wss.clients) ws.terminate()
        yield* Effect.async<void>((resume) => wss.close(() => resume(Effect.void)))
        server.closeAllConnections()
        yield* Effect.promise(() => serverClosed)
      })
  )
  yield* Effect.logInfo("gateway listening").pipe(
    Effect.annotateLogs({ host: settings.host, port, heartbeatMs: Duration.toMillis(settings.heartbeatInterval) })
  )

  const host = displayHost(settings.host)
  return {
    port,
    url: `ws://${host}:${port}${Http.WS_PATH}`,
    httpUrl: `http://${host}:${port}`,
    connections: () => live.size,
    bufferedBytes,
    metrics: () => metrics.render()
  }
})

/** The gateway layer: needs the NATS connection and settings and the gateway settings (with a JWT key). */
export const layer: Layer.Layer<Gateway, Errors.GatewayListenError | Errors.AuthError, GatewayConfig | NatsClient | NatsConfig> =
  Layer.scoped(Gateway, make).pipe(Layer.provide(Auth.layer))
