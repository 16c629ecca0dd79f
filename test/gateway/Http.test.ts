/**
 * The gateway's HTTP side against real NATS JetStream: commands published with the
 * token's tenant and `sub` (validated with the protocol schemas, idempotent with
 * `Idempotency-Key`), role checks, refusals dead-lettered with a reason, retry of a dead
 * letter (original bytes to the original subject), the Vapi webhook (secret, duplicates,
 * out of order, invalid bodies), `/metrics` with the gateway's and a node's counters, and
 * `/asyncapi.json`.
 */
import { createHmac } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { Gateway, GatewayConfig } from "../../gateway/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Command, Control, DeadLetter, Ids, Message } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as NatsFixture from "../fixtures/Nats.js"
import { authSettings, token } from "./Tokens.js"

const VAPI_SECRET = "vapi-shared-secret"
const Env = Gateway.layer.pipe(
  Layer.provide(
    GatewayConfig.layerWith({ port: 0, host: "127.0.0.1", ...authSettings, vapiSecret: Option.some(Redacted.make(VAPI_SECRET)), maxBodyBytes: 8 * 1024 })
  ),
  Layer.provideMerge(Deployment.layer),
  Layer.provideMerge(NatsFixture.layer())
)

const TENANT = "acme"
const registry = Message.registry([Campaign.StartCampaign, ...Control.all, DeadLetter.DeadLettered])
const operator = await token(TENANT, "operator", { sub: "alice" })
const viewer = await token(TENANT, "viewer", { sub: "victor" })

const call = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body)
    })
    const text = await res.text()
    let json: any = text
    try {
      json = JSON.parse(text)
    } catch {}
    return { status: res.status, body: json }
  })
const post = (url: string, body: unknown, bearer = operator, headers: Record<string, string> = {}) =>
  call("POST", url, body, { authorization: `Bearer ${bearer}`, ...headers })

const streamOf = (which: "commands" | "deadLetters" | "inbound", filter: string) =>
  Effect.gen(function* () {
    const { subjects } = yield* Deployment.Deployment
    if (which !== "commands") return yield* Crm.readAll(subjects.streams[which], filter)
    // a work-queue stream allows no second (ordered) consumer: read it message by message
    const { jsm } = yield* NatsClient
    return yield* Effect.promise(async () => {
      const info = await jsm.streams.info(subjects.streams.commands)
      const out: Array<{ seq: number; subject: string; json: any }> = []
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const m = await jsm.streams.getMessage(subjects.streams.commands, { seq }).catch(() => null)
        if (m !== null) out.push({ seq, subject: m.subject, json: m.json() })
      }
      return out
    })
  })

const start = {
  name: "Q3 outreach",
  goal: "email 10 leads",
  audience: { segments: ["enterprise"] },
  channels: ["email"],
  targetCount: 10,
  budget: { maxActions: 20, maxCostUsd: 5 }
}

describe("Gateway HTTP", () => {
  layer(Env, { excludeTestServices: true, timeout: "30 seconds" })("with real NATS", (it) => {
    it.scoped("publishes commands with the token's tenant and sub, schema-checked, idempotent by key", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { subjects } = yield* Deployment.Deployment
        const started = yield* post(`${gw.httpUrl}/api/campaigns`, { ...start, campaignId: "cmp-1" }, operator, { "idempotency-key": "k1" })
        expect(started.status, JSON.stringify(started.body)).toBe(202)
        expect(started.body).toMatchObject({ type: "campaign.start", campaignId: "cmp-1", duplicate: false, subject: subjects.command(TENANT, "campaign.start") })
        const again = yield* post(`${gw.httpUrl}/api/campaigns`, { ...start, campaignId: "cmp-1" }, operator, { "idempotency-key": "k1" })
        expect(again.body.duplicate, "same Idempotency-Key").toBe(true)

        const api = (path: string, body: unknown = {}) => post(`${gw.httpUrl}/api/campaigns/cmp-1/${path}`, body)
        for (const [path, body] of [
          ["pause", { reason: "holiday" }],
          ["resume", {}],
          ["edit", { targetCount: 5 }],
          ["cancel", {}],
          ["approvals/ap-1/approve", {}],
          ["approvals/ap-2/reject", { reason: "too many calls" }]
        ] as const) {
          const r = yield* api(path, body)
          expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(202)
        }
        // the tenant in a body is not a way into another tenant: it is not even a field
        const sneaky = yield* api("resume", { tenant: "globex" })
        expect(sneaky.status).toBe(400)

        const stored = yield* streamOf("commands", subjects.commandsAll)
        const decoded = stored.map((m) => registry.decodeJson(m.json)).map((d) => (d._tag === "Right" ? d.right : undefined))
        expect(decoded.every((d) => d !== undefined), "every stored command decodes").toBe(true)
        expect(decoded.map((d) => d!.type)).toEqual([
          "campaign.start", "campaign.pause", "campaign.resume", "campaign.edit", "campaign.cancel", "campaign.approve", "campaign.reject"
        ])
        expect(stored.every((m) => m.subject.startsWith(`${subjects.prefix}.${TENANT}.cmd.`))).toBe(true)
        expect(decoded.every((d) => d!.envelope.tenant === TENANT)).toBe(true)
        expect(decoded.slice(1).map((d) => (d!.payload as { by: string }).by)).toEqual(Array(6).fill("alice"))
        expect(decoded[1]!.payload).toMatchObject({ campaignId: "cmp-1", reason: "holiday" })
        expect(decoded[6]!.payload).toMatchObject({ approvalId: "ap-2", reason: "too many calls" })
      }))

    it.scoped("refuses missing tokens, viewers and invalid bodies; refusals become dead letters", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { subjects } = yield* Deployment.Deployment
        expect((yield* call("POST", `${gw.httpUrl}/api/campaigns`, start)).status, "no token").toBe(401)
        expect((yield* post(`${gw.httpUrl}/api/campaigns`, start, "forged.token.here")).status).toBe(401)
        expect((yield* call("GET", `${gw.httpUrl}/api/whoami`, undefined, { authorization: `Bearer ${viewer}` })).body).toMatchObject({ tenant: TENANT, role: "viewer", sub: "victor" })
        const forbidden = yield* post(`${gw.httpUrl}/api/campaigns/cmp-2/pause`, {}, viewer)
        expect(forbidden).toMatchObject({ status: 403, body: { error: "forbidden" } })
        const invalid = yield* post(`${gw.httpUrl}/api/campaigns`, { ...start, targetCount: -3, channels: [] })
        expect(invalid.status).toBe(400)
        expect(invalid.body.message).toContain("targetCount")
        expect((yield* post(`${gw.httpUrl}/api/campaigns`, "{not json")).status).toBe(400)
        expect((yield* post(`${gw.httpUrl}/api/campaigns`, { ...start, goal: "x".repeat(9000) })).status, "over maxBodyBytes").toBe(413)
        expect((yield* post(`${gw.httpUrl}/api/campaigns/bad.id/pause`, {})).status, "invalid campaign id").toBe(400)
        expect((yield* post(`${gw.httpUrl}/api/nothing`, {})).status).toBe(404)

        const dead = yield* streamOf("deadLetters", `${subjects.prefix}.${TENANT}.dlq.>`)
        const reasons = dead.map((m) => (m.json.payload as { reason: string }).reason)
        expect(reasons).toEqual(expect.arrayContaining(["Unauthorized", "InvalidPayload", "MalformedJson", "Oversized"]))
        expect(dead.every((m) => m.json.payload.receiver === "ext:gateway-http")).toBe(true)
      }))

    it.scoped("retries a dead letter: its original bytes to its original subject, once", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { js } = yield* NatsClient
        const { subjects } = yield* Deployment.Deployment
        const original = Command.make(subjects, registry, Ids.TenantId.make(TENANT), Campaign.StartCampaign, { ...start, campaignId: Ids.CampaignId.make("cmp-dl") } as unknown as Campaign.StartPayload)
        const record = (subject: string) => registry.encode(
          { id: `dl-${subject.length}-${Date.now()}` as never, tenant: TENANT as never, from: "ext:runtime" as never, to: "ext:dead-letters" as never, correlationId: "x", causationId: null, ts: Date.now(), trace: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` } },
          DeadLetter.DeadLettered,
          { reason: "HandlerFailed", error: { _tag: "HandlerFailed", message: "db down" }, receiver: "ext:command-router", subject, stream: subjects.streams.commands, streamSeq: 7, deliveries: 5, originalType: "campaign.start", originalId: original.id, headers: { "Nats-Msg-Id": [original.id], "X-Keep": ["yes"] }, dataBase64: Buffer.from(original.data).toString("base64"), at: Date.now() }
        )
        const ok = yield* Effect.promise(() => js.publish(subjects.deadLetter(TENANT, "HandlerFailed"), record(original.subject)))
        const foreign = yield* Effect.promise(() => js.publish(subjects.deadLetter(TENANT, "HandlerFailed"), record(subjects.command("globex", "campaign.start"))))
        const otherTenants = yield* Effect.promise(() => js.publish(subjects.deadLetter("globex", "HandlerFailed"), record(subjects.command("globex", "campaign.start"))))

        const first = yield* post(`${gw.httpUrl}/api/dead-letters/${ok.seq}/retry`, {})
        expect(first.status, JSON.stringify(first.body)).toBe(202)
        expect(first.body).toMatchObject({ subject: original.subject, duplicate: false })
        expect((yield* post(`${gw.httpUrl}/api/dead-letters/${ok.seq}/retry`, {})).body.duplicate, "second click").toBe(true)
        expect((yield* post(`${gw.httpUrl}/api/dead-letters/${foreign.seq}/retry`, {})).status, "subject of another tenant").toBe(403)
        expect((yield* post(`${gw.httpUrl}/api/dead-letters/${otherTenants.seq}/retry`, {})).status, "record of another tenant").toBe(404)
        expect((yield* post(`${gw.httpUrl}/api/dead-letters/999999/retry`, {})).status).toBe(404)
        expect((yield* post(`${gw.httpUrl}/api/dead-letters/${ok.seq}/retry`, {}, viewer)).status).toBe(403)

        const { jsm } = yield* NatsClient
        const stored = yield* Effect.promise(() => jsm.streams.getMessage(subjects.streams.commands, { seq: first.body.seq }))
        expect(Buffer.from(stored!.data).equals(Buffer.from(original.data)), "original bytes").toBe(true)
        expect(stored!.header.get("X-Keep")).toBe("yes")
      }))

    it.scoped("Vapi webhook: secret verified, de-duplicated by call id, safe out of order, invalid bodies dead-lettered", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { subjects } = yield* Deployment.Deployment
        const url = `${gw.httpUrl}/webhooks/vapi/${TENANT}`
        const hook = (body: unknown, headers: Record<string, string> = { "x-vapi-secret": VAPI_SECRET }) => call("POST", url, body, headers)
        const meta = { tenant: TENANT, campaignId: "cmp-v", contactId: "ct-1", idempotencyKey: "acme/cmp-v/ct-1/1/voice" }
        const report = { message: { type: "end-of-call-report", call: { id: "call-1", metadata: meta }, endedReason: "customer-ended-call", durationSeconds: 42, cost: 0.12, artifact: { transcript: "hi" }, analysis: { summary: "interested" }, timestamp: 2000 } }
        const ringing = { message: { type: "status-update", status: "ringing", call: { id: "call-1", metadata: meta }, timestamp: 1000 } }

        expect((yield* hook(ringing, {})).status, "no secret").toBe(401)
        expect((yield* hook(ringing, { "x-vapi-secret": "wrong" })).status, "wrong secret").toBe(401)
        expect((yield* hook(ringing)).body).toMatchObject({ stored: true })
        expect((yield* hook(ringing)).body, "same status twice").toMatchObject({ duplicate: true })
        const signed = createHmac("sha256", VAPI_SECRET).update(JSON.stringify(report)).digest("hex")
        expect((yield* call("POST", url, report, { "x-signature": signed })).body, "HMAC credential").toMatchObject({ stored: true })
        expect((yield* hook(report, { authorization: `Bearer ${VAPI_SECRET}` })).body, "bearer credential, repeated report").toMatchObject({ duplicate: true })
        const late = { message: { ...ringing.message, status: "in-progress", timestamp: 1500 } }
        expect((yield* hook(late)).body, "status after the end-of-call report").toMatchObject({ ignored: "after-end-of-call-report" })
        expect((yield* hook({ message: { type: "transcript", call: { id: "call-1" } } })).body).toEqual({ ignored: "transcript" })
        expect((yield* hook({ message: { type: "end-of-call-report", call: { id: "call 2" } } })).status, "invalid").toBe(422)
        expect((yield* hook("{oops")).status).toBe(400)
        expect((yield* hook({ message: { ...report.message, call: { id: "call-3", metadata: { tenant: "globex" } } } })).status, "call of another tenant").toBe(403)

        const stored = yield* streamOf("inbound", subjects.inboundAll)
        expect(stored.map((m) => m.subject)).toEqual([
          subjects.inbound(TENANT, "vapi", "call-1", "status-ringing"),
          subjects.inbound(TENANT, "vapi", "call-1", "end-of-call-report")
        ])
        expect(stored[1]!.json).toMatchObject({ type: "inbound.vapi-call-ended", tenant: TENANT, payload: { callId: "call-1", campaignId: "cmp-v", contactId: "ct-1", endedReason: "customer-ended-call", durationSec: 42, transcript: "hi", summary: "interested" } })
        // the report also feeds ingestion, once, as the generic inbound.call-ended command
        const commands = yield* streamOf("commands", subjects.commandsAll)
        // each stored call event is also a command for the runtime's call-events agent, once
        expect(commands.filter((m) => m.json.type.startsWith("inbound.vapi-")).map((m) => [m.subject, m.json.payload.callId])).toEqual([
          [subjects.command(TENANT, "inbound.vapi-call-status"), "call-1"],
          [subjects.command(TENANT, "inbound.vapi-call-ended"), "call-1"]
        ])
        const ingest = commands.filter((m) => m.json.type === "inbound.call-ended")
        expect(ingest.map((m) => m.json.payload)).toEqual([
          expect.objectContaining({ eventId: "vapi:call-1", callId: "call-1", contactId: "ct-1", campaignId: "cmp-v", outcome: "answered", direction: "outbound" })
        ])
        const dead = yield* streamOf("deadLetters", `${subjects.prefix}.${TENANT}.dlq.>`)
        const vapiDead = dead.filter((m) => m.json.payload.receiver === "ext:gateway-vapi").map((m) => m.json.payload.reason)
        expect(vapiDead).toEqual(expect.arrayContaining(["Unauthorized", "InvalidPayload", "MalformedJson"]))
      }))

    it.scoped("serves Prometheus metrics with the gateway's and each node's counters (a node reports by itself), and the AsyncAPI document", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        // a node reports its counters from the moment it starts, whoever started it
        const node = yield* Node.start<never>({ registry, actors: [], agents: [], commands: [], metricsEvery: Duration.millis(50) })
        node.counters.handled = 41
        node.counters.inFlight = 3
        const scrape = () => call("GET", `${gw.httpUrl}/metrics`)
        let text = ""
        for (let i = 0; i < 100 && !text.includes("nexus_handled_total"); i++) {
          text = (yield* scrape()).body
          if (!text.includes("nexus_handled_total")) yield* Effect.sleep("20 millis")
        }
        expect(text).toMatch(/nexus_handled_total\{node="[^"]+"\} 41/)
        text = (yield* scrape()).body // counts the scrapes before it
        expect(text).toMatch(/# TYPE nexus_in_flight gauge\nnexus_in_flight\{node="[^"]+"\} 3/)
        expect(text).toContain("# TYPE nexus_gateway_connections gauge")
        expect(text).toMatch(/nexus_gateway_http_requests_total\{route="\/metrics",status="200"\} \d+/)
        expect(text).toContain("nexus_gateway_event_delivery_seconds_bucket")
        const doc = yield* call("GET", `${gw.httpUrl}/asyncapi.json`)
        expect(doc.body.asyncapi).toBe("3.0.0")
        expect(Object.keys(doc.body.components.messages)).toContain("campaign.start")
      }))
  })
})
