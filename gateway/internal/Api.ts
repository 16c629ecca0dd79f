/**
 * The HTTP command API. Every route needs a valid JWT (`Authorization: Bearer`); the
 * tenant comes from the token and `by` from its `sub`. A body is decoded with the command's
 * own payload schema from `protocols/` and published as a complete envelope on the tenant's
 * command subject (`Command.make`), with an `Idempotency-Key` header as its de-duplication id
 * when given. Refusals answer with a JSON error and leave a dead-letter record (except for
 * missing or invalid tokens, which carry no trustworthy tenant).
 *
 *   POST /api/campaigns                                   start (body: StartCampaign payload; campaignId optional)
 *   POST /api/campaigns/:id/pause | resume | cancel | edit
 *   POST /api/campaigns/:id/approvals/:approvalId/approve | reject
 *   POST /api/dead-letters/:seq/retry                      republish a dead letter's original bytes
 *   GET  /api/whoami                                       the token's principal
 */
import { randomBytes } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { JetStreamClient } from "@nats-io/jetstream"
import { Effect, Either, Option, ParseResult, Schema } from "effect"
import { Campaign, Catalog, Command, Control, Message, type Subjects, Trace } from "../../protocols/index.js"
import { allows, type AuthService, type Principal, tokenOf } from "../Auth.js"
import { AuthError, Forbidden } from "../Errors.js"
import type { DeadLetters } from "./DeadLetters.js"
import { HttpFailure, readBody, sendJson } from "./HttpIo.js"
import type { GatewayMetrics } from "./Metrics.js"

/** What the API needs. */
export interface ApiDeps {
  readonly js: JetStreamClient
  readonly subjects: Subjects.Subjects
  readonly auth: AuthService
  readonly deadLetters: DeadLetters
  readonly metrics: GatewayMetrics
  readonly maxBodyBytes: number
}

const registry = Message.registry(Catalog.commands)
const idemRe = /^[A-Za-z0-9_.-]{1,60}$/

interface Route {
  readonly def: Message.MessageType
  /** The payload from the body and the path; server fields override the client's. */
  readonly payload: (body: Record<string, unknown>, params: ReadonlyArray<string>, p: Principal) => unknown
}

const campaignRoute = (def: Message.MessageType, defaults: Record<string, unknown> = {}): Route => ({
  def,
  payload: (body, [campaignId], p) => ({ ...defaults, ...body, campaignId, by: p.sub })
})

const routes: ReadonlyArray<readonly [RegExp, Route]> = [
  [
    /^\/api\/campaigns$/,
    {
      def: Campaign.StartCampaign,
      payload: (body) => ({ ...body, campaignId: body.campaignId ?? `c-${randomBytes(6).toString("base64url")}` })
    }
  ],
  [/^\/api\/campaigns\/([^/]+)\/pause$/, campaignRoute(Control.PauseCampaign, { reason: "paused by an operator" })],
  [/^\/api\/campaigns\/([^/]+)\/resume$/, campaignRoute(Control.ResumeCampaign)],
  [/^\/api\/campaigns\/([^/]+)\/cancel$/, campaignRoute(Control.CancelCampaign, { reason: "cancelled by an operator" })],
  [/^\/api\/campaigns\/([^/]+)\/edit$/, campaignRoute(Control.EditCampaign)],
  [
    /^\/api\/campaigns\/([^/]+)\/approvals\/([^/]+)\/approve$/,
    { def: Control.ApproveAction, payload: (body, [campaignId, approvalId], p) => ({ ...body, campaignId, approvalId, by: p.sub }) }
  ],
  [
    /^\/api\/campaigns\/([^/]+)\/approvals\/([^/]+)\/reject$/,
    {
      def: Control.RejectAction,
      payload: (body, [campaignId, approvalId], p) => ({ reason: "rejected by an operator", ...body, campaignId, approvalId, by: p.sub })
    }
  ]
]

/** True when the path belongs to the API. */
export const isApiPath = (pathname: string): boolean => pathname === "/api" || pathname.startsWith("/api/")

/** Authenticates a request. */
export const authenticate = (auth: AuthService, req: IncomingMessage): Effect.Effect<Principal, AuthError> =>
  Option.match(tokenOf(req.headers, req.url), {
    onNone: () => Effect.fail(new AuthError({ reason: "missing", message: "a bearer token is required (Authorization: Bearer <jwt>)" })),
    onSome: auth.verify
  })

const publishCommand = (deps: ApiDeps, p: Principal, route: Route, raw: unknown, params: ReadonlyArray<string>, idem: string | undefined, data: Uint8Array) =>
  Effect.gen(function* () {
    const body = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined
    const subject = deps.subjects.command(p.tenant, route.def.type)
    const refuse = (reason: string, message: string) =>
      deps.deadLetters.record(p.tenant, { reason, message, receiver: "ext:gateway-http", subject, originalType: route.def.type, data }).pipe(
        Effect.zipRight(Effect.fail(new HttpFailure({ status: 400, error: "invalid_command", message })))
      )
    if (body === undefined) return yield* refuse("InvalidPayload", "the body must be a JSON object")
    const decoded = Schema.decodeUnknownEither(route.def.payload, { errors: "all", onExcessProperty: "error" })(route.payload(body, params, p))
    if (Either.isLeft(decoded)) {
      return yield* refuse("InvalidPayload", ParseResult.TreeFormatter.formatErrorSync(decoded.left).slice(0, 1000))
    }
    const span = yield* Effect.currentSpan.pipe(Effect.option)
    const traceparent = Option.map(span, (s) => Trace.format(s.traceId, s.spanId)).pipe(Option.getOrUndefined)
    const cmd = Command.make(deps.subjects, registry, p.tenant, route.def, decoded.right, {
      ...(idem ? { id: `${p.tenant}:${idem}` } : {}),
      from: "gateway",
      ...(traceparent ? { traceparent } : {})
    })
    const ack = yield* Effect.tryPromise({
      try: () => deps.js.publish(cmd.subject, cmd.data, { msgID: cmd.id }),
      catch: (e) => new HttpFailure({ status: 503, error: "unavailable", message: `the command could not be published: ${String(e)}` })
    })
    deps.metrics.inc("nexus_gateway_commands_total", "Commands published from HTTP.", { type: route.def.type })
    return {
      id: cmd.id,
      type: route.def.type,
      subject: cmd.subject,
      duplicate: ack.duplicate,
      campaignId: (decoded.right as { campaignId: string }).campaignId,
      traceparent: traceparent ?? null
    }
  }).pipe(Effect.withSpan("gateway.command", { attributes: { "nexus.tenant": p.tenant, "nexus.type": route.def.type } }))

/** Handles an API request (the caller answers `HttpFailure`s). */
export const handle = (deps: ApiDeps, req: IncomingMessage, res: ServerResponse, pathname: string) =>
  Effect.gen(function* () {
    const p = yield* authenticate(deps.auth, req).pipe(
      Effect.tapError((e) => Effect.sync(() => deps.metrics.inc("nexus_gateway_auth_refused_total", "Requests and upgrades refused for their token.", { reason: e.reason }))),
      Effect.mapError((e) => new HttpFailure({ status: 401, error: "unauthenticated", message: e.message }))
    )
    if (pathname === "/api/whoami" && req.method === "GET") {
      return sendJson(res, 200, { tenant: p.tenant, role: p.role, sub: p.sub, expiresAt: p.expiresAt })
    }
    if (req.method !== "POST") {
      return yield* new HttpFailure({ status: 405, error: "method_not_allowed", message: `${req.method} is not allowed on ${pathname}` })
    }
    const retry = /^\/api\/dead-letters\/(\d{1,15})\/retry$/.exec(pathname)
    const match = routes.map(([re, route]) => [re.exec(pathname), route] as const).find(([m]) => m !== null)
    if (retry === null && match === undefined) {
      return yield* new HttpFailure({ status: 404, error: "not_found", message: `no route for POST ${pathname}` })
    }
    const data = yield* readBody(req, deps.maxBodyBytes).pipe(
      Effect.tapError((e) =>
        e.status === 413
          ? deps.deadLetters.record(p.tenant, { reason: "Oversized", message: e.message, receiver: "ext:gateway-http", subject: `http:POST ${pathname}`, originalType: null, data: new Uint8Array() })
          : Effect.void
      )
    )
    if (!allows(p.role, "command")) {
      const f = new Forbidden({ message: `role '${p.role}' may not send commands` })
      yield* deps.deadLetters.record(p.tenant, { reason: "Unauthorized", message: f.message, receiver: "ext:gateway-http", subject: `http:POST ${pathname}`, originalType: null, data })
      return yield* new HttpFailure({ status: 403, error: "forbidden", message: f.message })
    }
    if (retry !== null) {
      const done = yield* deps.deadLetters.retry(p.tenant, Number(retry[1])).pipe(
        Effect.mapError((e) => new HttpFailure({ status: e.status, error: e.error, message: e.message }))
      )
      return sendJson(res, 202, done)
    }
    let raw: unknown = {}
    if (data.byteLength > 0) {
      try {
        raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data))
      } catch (e) {
        const message = `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`
        yield* deps.deadLetters.record(p.tenant, { reason: "MalformedJson", message, receiver: "ext:gateway-http", subject: `http:POST ${pathname}`, originalType: null, data })
        return yield* new HttpFailure({ status: 400, error: "bad_request", message })
      }
    }
    const header = req.headers["idempotency-key"]
    const idem = typeof header === "string" ? header : undefined
    if (idem !== undefined && !idemRe.test(idem)) {
      return yield* new HttpFailure({ status: 400, error: "bad_request", message: "Idempotency-Key must be 1..60 characters of [A-Za-z0-9_.-]" })
    }
    const [m, route] = match!
    const params = m!.slice(1).map((s) => decodeURIComponent(s))
    const done = yield* publishCommand(deps, p, route, raw, params, idem, data)
    return sendJson(res, 202, done)
  })
