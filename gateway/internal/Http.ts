/**
 * The plain-HTTP side of the gateway: health endpoints, JSON 404s, and refusing WebSocket
 * upgrades (wrong path, missing or invalid tenant, gateway stopping) with a JSON answer
 * before any WebSocket exists. The tenant is taken from the `tenant` query parameter until
 * JWT auth lands (see the TODO in `Gateway.ts`).
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import type { JetStreamManager } from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"
import { Effect, Either, ParseResult, Schema } from "effect"
import { Ids } from "../../protocols/index.js"

/** Path of the WebSocket endpoint. */
export const WS_PATH = "/ws"

/** The outcome of a readiness check. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string }

/** Ready when the NATS connection is open and the events stream exists. */
export const readiness = (nc: NatsConnection, jsm: JetStreamManager, stream: string): Effect.Effect<Readiness> =>
  Effect.suspend(() => {
    if (nc.isClosed() || nc.isDraining()) {
      return Effect.succeed<Readiness>({ ready: false, reason: "the NATS connection is closed" })
    }
    return Effect.tryPromise({ try: () => jsm.streams.info(stream), catch: (cause) => cause }).pipe(
      Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("timed out") }),
      Effect.as<Readiness>({ ready: true }),
      Effect.catchAll((e) =>
        Effect.succeed<Readiness>({
          ready: false,
          reason: `events stream ${stream} unavailable: ${e instanceof Error ? e.message : String(e)}`
        })
      )
    )
  })

/** Writes a JSON response. */
export const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

/** Routes a plain HTTP request; `ready` runs the readiness check and answers when it is done. */
export const route = (
  req: IncomingMessage,
  res: ServerResponse,
  ready: (answer: (r: Readiness) => void) => void
): void => {
  const { pathname } = new URL(req.url ?? "/", "http://gateway")
  const known = pathname === "/health/live" || pathname === "/health/ready" || pathname === WS_PATH
  if (!known) return sendJson(res, 404, { error: "not_found", message: `no route for ${pathname}` })
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD")
    return sendJson(res, 405, { error: "method_not_allowed", message: `${req.method} is not allowed on ${pathname}` })
  }
  switch (pathname) {
    case "/health/live":
      return sendJson(res, 200, { status: "ok" })
    case "/health/ready":
      return ready((r) => {
        if (res.writableEnded) return
        if (r.ready) sendJson(res, 200, { status: "ready" })
        else sendJson(res, 503, { status: "unavailable", reason: r.reason })
      })
    default:
      return sendJson(res, 426, { error: "upgrade_required", message: `${WS_PATH} is a WebSocket endpoint` })
  }
}

/** Answers an upgrade request with an HTTP error and closes the socket. */
export const refuseUpgrade = (socket: Duplex, status: number, error: string, message: string): void => {
  const body = JSON.stringify({ error, message })
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "Connection: close\r\n" +
      "Content-Type: application/json\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body
  )
}

const decodeTenant = Schema.decodeUnknownEither(Ids.TenantId)

/** Reads and validates the tenant of an upgrade request (`/ws?tenant=<TenantId>`). */
export const tenantOf = (req: IncomingMessage): Either.Either<Ids.TenantId, string> => {
  const raw = new URL(req.url ?? "/", "http://gateway").searchParams.get("tenant")
  if (raw === null || raw === "") return Either.left("query parameter 'tenant' is required")
  return Either.mapLeft(
    decodeTenant(raw),
    (e) => `invalid tenant: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
  )
}

/** True when the upgrade request targets the WebSocket endpoint. */
export const isWsPath = (req: IncomingMessage): boolean =>
  new URL(req.url ?? "/", "http://gateway").pathname === WS_PATH
