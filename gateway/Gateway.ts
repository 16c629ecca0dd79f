/**
 * The gateway as a scoped service: a node `http` server with a `ws` WebSocket endpoint on
 * `/ws?tenant=<TenantId>` that streams campaign progress events from the JetStream events
 * stream to subscribed clients, in stream order, resumable from any stream sequence, plus
 * `GET /health/live` and `GET /health/ready`. The WebSocket protocol is in `Frame.ts`.
 *
 * Acquire listens (on `GatewayConfig.port`; 0 picks a free port, exposed as `port`).
 * Release stops accepting, closes every client with 1001 (stopping and deleting their
 * consumers), cuts clients that do not answer within a second, and closes the server.
 *
 * Memory per client is bounded by `maxBufferedBytes` + one event per subscription (queued
 * in the socket) + about `pullBatch` events per subscription (pulled from JetStream); a
 * client above `maxBufferedBytes` for `slowClientTimeout` is closed with 4008.
 *
 * TODO(auth): clients are not authenticated yet; the tenant is trusted from the query
 * string. A later issue adds JWT auth: the tenant then comes from the token's claims and a
 * mismatching `tenant` parameter is refused.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Either, FiberSet, Layer, type Scope } from "effect"
import { type WebSocket, WebSocketServer } from "ws"
import { Subjects } from "../protocols/index.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import * as Errors from "./Errors.js"
import { GatewayConfig } from "./GatewayConfig.js"
import * as Connection from "./internal/Connection.js"
import * as Http from "./internal/Http.js"

/** The running gateway. */
export interface GatewayService {
  /** The bound TCP port (the real one when `GATEWAY_PORT` is 0). */
  readonly port: number
  /** The WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws` (add `?tenant=<id>`). */
  readonly url: string
  /** The HTTP base URL, e.g. `http://127.0.0.1:8080` (health endpoints). */
  readonly httpUrl: string
  /** WebSocket clients being served (closing ones excluded). */
  readonly connections: () => number
  /** Bytes queued towards all clients, closing ones included (`ws.bufferedAmount` summed). */
  readonly bufferedBytes: () => number
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
  GatewayConfig | NatsClient | NatsConfig | Scope.Scope
> = Effect.gen(function* () {
  const settings = yield* GatewayConfig
  const { nc, js, jsm } = yield* NatsClient
  const natsSettings = yield* NatsConfig
  const subjects = Subjects.make(natsSettings.prefix, natsSettings.partitions)
  const stream = subjects.streams.events

  const live = new Set<WebSocket>()
  const deps: Connection.Deps = {
    settings,
    live,
    source: {
      js,
      stream,
      filterOf: (tenant, campaignId) => subjects.eventsOf(tenant, "campaign", campaignId),
      pullBatch: settings.pullBatch
    }
  }
  const server = http.createServer()
  const wss = new WebSocketServer({
    noServer: true,
    // frames between maxFrameBytes and this hard cap get an error frame; larger ones close with 1009
    maxPayload: Math.max(4 * settings.maxFrameBytes, 1024 * 1024),
    perMessageDeflate: false
  })
  const tasks = yield* FiberSet.make()
  const run = yield* FiberSet.runtime(tasks)<never>()
  let accepting = true

  server.on("request", (req, res) =>
    Http.route(req, res, (answer) => {
      run(Effect.map(Http.readiness(nc, jsm, stream), answer))
    })
  )
  server.on("upgrade", (req: http.IncomingMessage, socket, head) => {
    socket.on("error", () => socket.destroy())
    if (!accepting) return Http.refuseUpgrade(socket, 503, "unavailable", "the gateway is stopping")
    if (!Http.isWsPath(req)) return Http.refuseUpgrade(socket, 404, "not_found", `WebSocket endpoint is ${Http.WS_PATH}`)
    const tenant = Http.tenantOf(req)
    if (Either.isLeft(tenant)) return Http.refuseUpgrade(socket, 400, "bad_request", tenant.left)
    wss.handleUpgrade(req, socket, head, (ws) => {
      run(Connection.serve(ws, tenant.right, deps))
    })
  })

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
        // interrupting a connection closes it with 1001 and stops its consumers
        yield* FiberSet.clear(tasks)
        for (const ws of wss.clients) ws.terminate()
        yield* Effect.async<void>((resume) => wss.close(() => resume(Effect.void)))
        server.closeAllConnections()
        yield* Effect.promise(() => serverClosed)
      })
  )
  yield* Effect.logInfo("gateway listening").pipe(Effect.annotateLogs({ host: settings.host, port, stream }))

  const host = displayHost(settings.host)
  return {
    port,
    url: `ws://${host}:${port}${Http.WS_PATH}`,
    httpUrl: `http://${host}:${port}`,
    connections: () => live.size,
    bufferedBytes: () => {
      let total = 0
      for (const ws of wss.clients) total += ws.bufferedAmount
      return total
    }
  }
})

/** The gateway layer: needs the NATS connection and settings and the gateway settings. */
export const layer: Layer.Layer<Gateway, Errors.GatewayListenError, GatewayConfig | NatsClient | NatsConfig> =
  Layer.scoped(Gateway, make)
