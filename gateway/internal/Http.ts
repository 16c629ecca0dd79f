/**
 * The plain-HTTP side of the gateway: the route table (health, metrics, AsyncAPI,
 * dashboard, the command API, the Vapi webhook), JSON errors for everything refused, and
 * refusing WebSocket upgrades (wrong path, missing, expired or forged token, gateway
 * stopping) with a JSON answer before any WebSocket exists.
 *
 *   GET  /health/live, /health/ready      liveness; readiness (NATS connected, streams there)
 *   GET  /metrics                         Prometheus text: the gateway's and every node's counters
 *   GET  /asyncapi.json                   the AsyncAPI 3 document of the NATS interface
 *   GET  /                                the dashboard (asks for a token)
 *   *    /api/...                         the command API (see `Api.ts`), JWT required
 *   POST /webhooks/vapi/:tenant           the Vapi server URL (see `Webhooks.ts`)
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import type { JetStreamManager } from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"
import { Effect } from "effect"
import * as Api from "./Api.js"
import { HttpFailure, sendJson, sendText } from "./HttpIo.js"
import type { GatewayMetrics } from "./Metrics.js"
import * as Static from "./Static.js"
import * as Webhooks from "./Webhooks.js"

export { sendJson } from "./HttpIo.js"

/** Path of the WebSocket endpoint. */
export const WS_PATH = "/ws"

/** The outcome of a readiness check. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string }

/** Ready when the NATS connection is open and the streams the gateway reads exist. */
export const readiness = (nc: NatsConnection, jsm: JetStreamManager, streams: ReadonlyArray<string>): Effect.Effect<Readiness> =>
  Effect.suspend(() => {
    if (nc.isClosed() || nc.isDraining()) {
      return Effect.succeed<Readiness>({ ready: false, reason: "the NATS connection is closed" })
    }
    return Effect.forEach(streams, (stream) =>
      Effect.tryPromise({ try: () => jsm.streams.info(stream), catch: (cause) => ({ stream, cause }) })
    ).pipe(
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => ({ stream: streams.join(", "), cause: new Error("timed out") }) }),
      Effect.as<Readiness>({ ready: true }),
      Effect.catchAll((e) =>
        Effect.succeed<Readiness>({
          ready: false,
          reason: `stream ${e.stream} unavailable: ${e.cause instanceof Error ? e.cause.message : String(e.cause)}`
        })
      )
    )
  })

/** What the router needs. */
export interface RouterDeps {
  readonly api: Api.ApiDeps
  readonly webhooks: Webhooks.WebhookDeps
  readonly metrics: GatewayMetrics
  readonly ready: Effect.Effect<Readiness>
  readonly serveStatic: (res: ServerResponse, pathname: string) => void
}

const routeName = (pathname: string): string =>
  pathname.startsWith("/api/") ? "api" : pathname.startsWith("/webhooks/") ? "webhooks" : Static.isStatic(pathname) ? "static" : pathname.startsWith("/health/") || pathname === "/metrics" || pathname === WS_PATH ? pathname : "other"

/** Handles one plain HTTP request; never fails (refusals are answered as JSON errors). */
export const route = (deps: RouterDeps, req: IncomingMessage, res: ServerResponse): Effect.Effect<void> => {
  const { pathname } = new URL(req.url ?? "/", "http://gateway")
  const readOnly = (f: () => Effect.Effect<void, HttpFailure> | void): Effect.Effect<void, HttpFailure> =>
    req.method === "GET" || req.method === "HEAD"
      ? Effect.suspend(() => f() ?? Effect.void)
      : Effect.fail(new HttpFailure({ status: 405, error: "method_not_allowed", message: `${req.method} is not allowed on ${pathname}` }))
  const hook = Webhooks.PATH.exec(pathname)
  const program: Effect.Effect<void, HttpFailure> =
    pathname === "/health/live"
      ? readOnly(() => sendJson(res, 200, { status: "ok" }))
      : pathname === "/health/ready"
        ? readOnly(() =>
            Effect.map(deps.ready, (r) =>
              r.ready ? sendJson(res, 200, { status: "ready" }) : sendJson(res, 503, { status: "unavailable", reason: r.reason })
            )
          )
        : pathname === "/metrics"
          ? readOnly(() => sendText(res, 200, "text/plain; version=0.0.4; charset=utf-8", deps.metrics.render()))
          : pathname === WS_PATH
            ? readOnly(() => sendJson(res, 426, { error: "upgrade_required", message: `${WS_PATH} is a WebSocket endpoint` }))
            : Static.isStatic(pathname)
              ? readOnly(() => deps.serveStatic(res, pathname))
              : Api.isApiPath(pathname)
                ? Api.handle(deps.api, req, res, pathname)
                : hook !== null
                  ? Webhooks.handle(deps.webhooks, req, res, hook[1]!)
                  : Effect.fail(new HttpFailure({ status: 404, error: "not_found", message: `no route for ${pathname}` }))
  return program.pipe(
    Effect.catchAll((f) =>
      Effect.sync(() => {
        if (f.status === 405) res.setHeader("allow", pathname.startsWith("/api/") || pathname.startsWith("/webhooks/") ? "POST" : "GET, HEAD")
        if (f.status === 401) res.setHeader("www-authenticate", 'Bearer realm="nexus"')
        sendJson(res, f.status, { error: f.error, message: f.message })
      })
    ),
    Effect.catchAllDefect((d) =>
      Effect.logError("HTTP handler failed", d).pipe(
        Effect.zipRight(Effect.sync(() => sendJson(res, 500, { error: "internal", message: "internal error" })))
      )
    ),
    Effect.ensuring(
      Effect.sync(() =>
        deps.metrics.inc("nexus_gateway_http_requests_total", "HTTP requests by route and status.", {
          route: routeName(pathname),
          status: String(res.statusCode)
        })
      )
    )
  )
}

/** Answers an upgrade request with an HTTP error and closes the socket. */
export const refuseUpgrade = (socket: Duplex, status: number, error: string, message: string): void => {
  const body = JSON.stringify({ error, message })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "Connection: close\r\n" +
      "Content-Type: application/json\r\n" +
      (status === 401 ? 'WWW-Authenticate: Bearer realm="nexus"\r\n' : "") +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body
  )
}

/** True when the upgrade request targets the WebSocket endpoint. */
export const isWsPath = (req: IncomingMessage): boolean =>
  new URL(req.url ?? "/", "http://gateway").pathname === WS_PATH
