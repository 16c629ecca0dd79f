/**
 * Traces across NATS hops, exported by OTLP: a command sent over HTTP starts a
 * `gateway.command` span whose context goes into the command's envelope; a runtime hop
 * keeps the trace id in the envelope of the event it emits (as `Outbox` does); the gateway
 * delivering that event to a WebSocket client records `gateway.deliver` as a child of the
 * event's span. A real OTLP/HTTP receiver on loopback collects what the exporter sends.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Telemetry from "../../bin/Telemetry.js"
import { Gateway, GatewayConfig } from "../../gateway/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, Campaign, type Ids, Message, Trace } from "../../protocols/index.js"
import { Outbox } from "../../runtime/index.js"
import * as NatsFixture from "../fixtures/Nats.js"
import { authSettings, token } from "./Tokens.js"
import { connect } from "../fixtures/WsClient.js"

interface Span { readonly traceId: string; readonly spanId: string; readonly parentSpanId?: string; readonly name: string }
const received: Array<Span> = []
const receiver = http.createServer((req, res) => {
  let body = ""
  req.on("data", (c) => (body += c))
  req.on("end", () => {
    const json = JSON.parse(body)
    for (const rs of json.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) received.push(...ss.spans)
    res.writeHead(200, { "content-type": "application/json" }).end("{}")
  })
})
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`

const tracing = Telemetry.layer({ serviceName: "nexus-test", exportInterval: "100 millis" }).pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OTEL_EXPORTER_OTLP_ENDPOINT", endpoint]]))))
)
const Env = Gateway.layer.pipe(
  Layer.provide(GatewayConfig.layerWith({ port: 0, host: "127.0.0.1", ...authSettings })),
  Layer.provideMerge(Deployment.layer),
  Layer.provideMerge(NatsFixture.layer()),
  Layer.provideMerge(tracing)
)
const registry = Message.registry(Campaign.all)

describe("Telemetry", () => {
  layer(Env, { excludeTestServices: true, timeout: "30 seconds" })("OTLP export", (it) => {
    it.scoped("one trace from the HTTP command, through the envelope, to the WebSocket delivery", () =>
      Effect.gen(function* () {
        yield* Effect.addFinalizer(() => Effect.sync(() => receiver.close()))
        const gw = yield* Gateway.Gateway
        const { js } = yield* NatsClient
        const { subjects } = yield* Deployment.Deployment
        const jwt = yield* Effect.promise(() => token("acme", "operator"))
        const res = yield* Effect.promise(() =>
          fetch(`${gw.httpUrl}/api/campaigns`, {
            method: "POST",
            headers: { authorization: `Bearer ${jwt}`, "content-type": "application/json" },
            body: JSON.stringify({ campaignId: "tr-1", name: "traced", goal: "g", audience: {}, channels: ["email"], targetCount: 1, budget: { maxActions: 1, maxCostUsd: 1 } })
          }).then((r) => r.json() as Promise<{ traceparent: string }>)
        )
        const command = Trace.parse(res.traceparent)!
        expect(command, "the command carries the gateway span's context").toBeDefined()

        // the runtime's hop: an event caused by the command keeps its trace id (Outbox.childTraceparent)
        const eventId = "ev-traced-1"
        const traceparent = Outbox.childTraceparent(res.traceparent, eventId)
        const bytes = registry.encode(
          { id: eventId as Ids.MessageId, tenant: "acme" as Ids.TenantId, from: Address.actor("campaign", "tr-1"), to: Address.topic("campaign", "tr-1"), correlationId: "tr-1", causationId: null, ts: Date.now(), trace: { traceparent } },
          Campaign.CampaignStarted,
          { campaignId: "tr-1" as Ids.CampaignId, name: "traced", goal: "g", targetCount: 1 }
        )
        yield* Effect.promise(() => js.publish(subjects.event("acme", "campaign", "tr-1", Campaign.CampaignStarted.type), bytes))
        const client = yield* connect(`${gw.url}?token=${jwt}`)
        client.send({ op: "subscribe", campaignId: "tr-1" })
        yield* Effect.promise(() => client.eventsUntil("tr-1", 1))

        const find = (name: string) => received.find((s) => s.name === name && s.traceId === command.traceId)
        for (let i = 0; i < 100 && (find("gateway.command") === undefined || find("gateway.deliver") === undefined); i++) yield* Effect.sleep("50 millis")
        const sent = find("gateway.command")
        const delivered = find("gateway.deliver")
        expect(sent, `spans received: ${received.map((s) => s.name).join(", ")}`).toBeDefined()
        expect(sent!.spanId).toBe(command.spanId)
        expect(delivered, "the delivery continues the same trace").toBeDefined()
        expect(delivered!.parentSpanId).toBe(Trace.parse(traceparent)!.spanId)
      }))
  })
})
