/**
 * The Vapi webhook: `POST /webhooks/vapi/:tenant`, the "server URL" of the tenant's Vapi
 * assistants. Authenticated by the shared secret (`GATEWAY_VAPI_SECRET`) that Vapi sends as
 * `X-Vapi-Secret` or, with a bearer-token credential, as `Authorization: Bearer`; or by an
 * HMAC credential's `X-Signature` (hex HMAC-SHA256 of the raw body). Compared in constant time.
 *
 * Vapi sends no event id, may repeat a message and may deliver it out of order, so each
 * message is stored at most once per call on `<p>.<t>.in.vapi.<callId>.<event>` (event =
 * `end-of-call-report` or `status-<status>`), guarded by an expected-last-subject-sequence
 * of 0 (the stream refuses a second message on the subject, without a time window); a
 * status update arriving after the call's end-of-call report is acknowledged and dropped.
 * Message types the runtime does not use are acknowledged and ignored. Invalid bodies are
 * answered 422 and dead-lettered.
 *
 * Each stored (or repeated) message is then published as a command on
 * `<p>.<t>.cmd.inbound.vapi-call-ended` / `…vapi-call-status`, where the command router
 * hands it to the runtime's call-events agent. An end-of-call report of a known contact is
 * also published as the generic
 * `inbound.call-ended` command (`protocols/Inbound.ts`) that feeds the knowledge store, with
 * `vapi:<callId>` as its event id (the ingest agent's idempotency key) and as its
 * de-duplication id, on every delivery of the report (so a failure after storing is
 * repaired by Vapi's retry).
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream"
import { Effect, Either, Option, ParseResult, Redacted, Schema } from "effect"
import { Address, Command, Ids, Message, type Subjects, Trace, Vapi } from "../../protocols/index.js"
import * as Inbound from "../../protocols/Inbound.js"
import { apiCode } from "../../nats/Errors.js"
import type { DeadLetters } from "./DeadLetters.js"
import { HttpFailure, readBody, sendJson } from "./HttpIo.js"
import type { GatewayMetrics } from "./Metrics.js"

/** What the webhook needs. */
export interface WebhookDeps {
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly subjects: Subjects.Subjects
  readonly secret: Option.Option<Redacted.Redacted>
  readonly deadLetters: DeadLetters
  readonly metrics: GatewayMetrics
  readonly maxBodyBytes: number
}

/** The path pattern of the webhook. */
export const PATH = /^\/webhooks\/vapi\/([^/]+)$/

const registry = Message.registry(Vapi.all)
const decodeBody = Schema.decodeUnknownEither(Vapi.WebhookBody, { errors: "first" })
const decodeTenant = Schema.decodeUnknownEither(Ids.TenantId)
const HANDLED = new Set(["status-update", "end-of-call-report"])
const WRONG_LAST_SEQUENCE = 10071

const same = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** True when the request carries the shared secret (header, bearer, or HMAC of the body). */
export const verified = (req: IncomingMessage, body: Uint8Array, secret: string): boolean => {
  const header = req.headers["x-vapi-secret"]
  if (typeof header === "string" && same(header, secret)) return true
  const auth = req.headers.authorization
  if (typeof auth === "string" && /^Bearer\s+/i.test(auth) && same(auth.replace(/^Bearer\s+/i, "").trim(), secret)) return true
  const sig = req.headers["x-signature"]
  if (typeof sig === "string") {
    const expected = createHmac("sha256", secret).update(body).digest("hex")
    return same(sig.replace(/^sha256=/, "").toLowerCase(), expected)
  }
  return false
}

const ref = (s: string | undefined) => s ?? null

/** Handles one webhook request. */
export const handle = (deps: WebhookDeps, req: IncomingMessage, res: ServerResponse, tenantToken: string) =>
  Effect.gen(function* () {
    const count = (result: string) => deps.metrics.inc("nexus_gateway_webhooks_total", "Vapi webhook messages by result.", { result })
    if (req.method !== "POST") return yield* new HttpFailure({ status: 405, error: "method_not_allowed", message: "POST only" })
    if (Option.isNone(deps.secret)) {
      return yield* new HttpFailure({ status: 503, error: "not_configured", message: "GATEWAY_VAPI_SECRET is not set" })
    }
    const tenant = decodeTenant(decodeURIComponent(tenantToken))
    if (Either.isLeft(tenant)) return yield* new HttpFailure({ status: 404, error: "not_found", message: "unknown tenant" })
    const t = tenant.right
    const body = yield* readBody(req, deps.maxBodyBytes)
    const source = `http:POST /webhooks/vapi/${t}`
    const refuse = (status: number, reason: string, message: string) =>
      deps.deadLetters.record(t, { reason, message, receiver: "ext:gateway-vapi", subject: source, originalType: null, data: body }).pipe(
        Effect.tap(() => count(reason)),
        Effect.zipRight(Effect.fail(new HttpFailure({ status, error: reason, message })))
      )
    if (!verified(req, body, Redacted.value(deps.secret.value))) {
      return yield* refuse(401, "Unauthorized", "the Vapi secret or signature does not match")
    }
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body))
    } catch (e) {
      return yield* refuse(400, "MalformedJson", `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    const type = (json as { message?: { type?: unknown } } | null)?.message?.type
    if (typeof type === "string" && !HANDLED.has(type)) {
      count("ignored")
      return sendJson(res, 200, { ignored: type })
    }
    const decoded = decodeBody(json)
    if (Either.isLeft(decoded)) return yield* refuse(422, "InvalidPayload", ParseResult.TreeFormatter.formatErrorSync(decoded.left).slice(0, 1000))
    const m = decoded.right.message
    const meta = m.call.metadata ?? {}
    if (meta.tenant !== undefined && meta.tenant !== t) {
      return yield* refuse(403, "Unauthorized", `the call belongs to tenant '${meta.tenant}', not '${t}'`)
    }
    const callId = m.call.id
    const eocrSubject = deps.subjects.inbound(t, "vapi", callId, "end-of-call-report")
    const lastOn = (subject: string) =>
      Effect.tryPromise(() => deps.jsm.streams.getMessage(deps.subjects.streams.inbound, { last_by_subj: subject })).pipe(
        Effect.map((sm) => sm !== null),
        Effect.orElseSucceed(() => false)
      )
    if (m.type === "status-update" && (yield* lastOn(eocrSubject))) {
      count("late")
      return sendJson(res, 200, { ignored: "after-end-of-call-report", callId })
    }
    const now = Date.now()
    const [subject, def, payload] =
      m.type === "end-of-call-report"
        ? ([
            eocrSubject,
            Vapi.CallEnded,
            {
              callId,
              campaignId: ref(meta.campaignId),
              contactId: ref(meta.contactId),
              idempotencyKey: ref(meta.idempotencyKey),
              endedReason: m.endedReason,
              durationSec: m.durationSeconds ?? null,
              costUsd: m.cost ?? null,
              transcript: ref(m.artifact?.transcript),
              summary: ref(m.analysis?.summary),
              endedAt: ref(m.endedAt),
              at: m.timestamp ?? now
            }
          ] as const)
        : ([
            deps.subjects.inbound(t, "vapi", callId, `status-${m.status}`),
            Vapi.CallStatusChanged,
            {
              callId,
              status: m.status,
              campaignId: ref(meta.campaignId),
              contactId: ref(meta.contactId),
              idempotencyKey: ref(meta.idempotencyKey),
              at: m.timestamp ?? now
            }
          ] as const)
    const id = `vapi:${callId}:${subject.split(".").pop()}`
    const env = {
      id: Ids.MessageId.make(id),
      tenant: t,
      from: Address.ext("vapi"),
      to: Address.ext("inbound"),
      correlationId: meta.idempotencyKey ?? callId,
      causationId: null,
      ts: now,
      trace: { traceparent: Option.match(yield* Effect.option(Effect.currentSpan), {
        onNone: () => Trace.format(randomBytes(16).toString("hex"), randomBytes(8).toString("hex")),
        onSome: (s) => Trace.format(s.traceId, s.spanId)
      }) }
    }
    const stored = yield* Effect.tryPromise({
      try: () => deps.js.publish(subject, registry.encode(env, def, payload), { msgID: id, expect: { lastSubjectSequence: 0 } }),
      catch: (e) => e
    }).pipe(
      Effect.map((ack) => (ack.duplicate ? ("duplicate" as const) : ("stored" as const))),
      Effect.catchAll((e) =>
        apiCode(e) === WRONG_LAST_SEQUENCE
          ? Effect.succeed("duplicate" as const)
          : Effect.fail(new HttpFailure({ status: 503, error: "unavailable", message: `could not store the message: ${String(e)}` }))
      )
    )
    count(stored)
    // the runtime's call-events agent takes it from the command subject; the same id
    // de-duplicates a repeat, and a repeat repairs a command publish that failed earlier
    const command = Command.make(deps.subjects, registry, t, def as Message.MessageType, payload, {
      id: `${t}:${id}`,
      from: "vapi",
      traceparent: env.trace.traceparent
    })
    yield* Effect.tryPromise({
      try: () => deps.js.publish(command.subject, command.data, { msgID: command.id }),
      catch: (e) => new HttpFailure({ status: 503, error: "unavailable", message: `could not publish the call event: ${String(e)}` })
    })
    if (m.type === "end-of-call-report") yield* forIngestion(deps, t, m)
    return sendJson(res, 200, { [stored]: true, callId, subject })
  }).pipe(Effect.withSpan("gateway.webhook.vapi"))

const commandRegistry = Message.registry(Inbound.all)
const decodeContact = Schema.decodeUnknownOption(Ids.ContactId)
const decodeCampaign = Schema.decodeUnknownOption(Ids.CampaignId)

/** The outcome of a call from Vapi's `endedReason`. */
export const outcomeOf = (endedReason: string): Inbound.CallOutcome =>
  /voicemail/.test(endedReason)
    ? "voicemail"
    : /did-not-answer|no-answer/.test(endedReason)
      ? "no-answer"
      : /busy/.test(endedReason)
        ? "busy"
        : /^(customer-ended-call|assistant-ended-call|assistant-said-end-call-phrase|exceeded-max-duration|silence-timed-out|assistant-forwarded-call)/.test(endedReason)
          ? "answered"
          : "failed"

const millis = (iso: string | undefined, fallback: number) => {
  const t = iso === undefined ? Number.NaN : Date.parse(iso)
  return Math.max(0, Math.round(Number.isFinite(t) ? t : fallback))
}

/** Publishes the report as `inbound.call-ended` for ingestion, when it names a contact. */
const forIngestion = (deps: WebhookDeps, tenant: Ids.TenantId, m: typeof Vapi.EndOfCallReport.Type) =>
  Effect.gen(function* () {
    const contactId = decodeContact(m.call.metadata?.contactId)
    if (Option.isNone(contactId)) return
    const now = Date.now()
    const endedAt = millis(m.endedAt, m.timestamp ?? now)
    const id = `${tenant}:vapi-call-ended:${m.call.id}`
    const payload: typeof Inbound.CallEnded.payload.Type = {
      eventId: Inbound.EventId.make(`vapi:${m.call.id}`),
      callId: m.call.id,
      contactId: contactId.value,
      direction: "outbound" as const,
      startedAt: Math.min(endedAt, millis(m.startedAt, endedAt - (m.durationSeconds ?? 0) * 1000)),
      endedAt,
      outcome: outcomeOf(m.endedReason),
      summary: m.analysis?.summary?.slice(0, 10_000) ?? null,
      transcript: m.artifact?.transcript?.slice(0, 500_000) ?? null,
      campaignId: Option.getOrNull(decodeCampaign(m.call.metadata?.campaignId))
    }
    const cmd = Command.make(deps.subjects, commandRegistry, tenant, Inbound.CallEnded, payload, { id, from: "vapi" })
    yield* Effect.tryPromise({
      try: () => deps.js.publish(cmd.subject, cmd.data, { msgID: cmd.id }),
      catch: (e) => new HttpFailure({ status: 503, error: "unavailable", message: `could not publish the call for ingestion: ${String(e)}` })
    })
  })
