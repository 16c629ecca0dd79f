/**
 * Per-connection behaviour with real NATS and `ws` clients: several campaigns on one
 * connection, tenant isolation by the token, tenant feeds (campaign starts, dead letters),
 * heartbeats cutting dead peers, the frame rate limit, closing when the token expires, and
 * a gateway that refuses to start without a JWT key.
 */
import { randomBytes } from "node:crypto"
import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Option } from "effect"
import { WebSocket } from "ws"
import { Gateway, GatewayConfig } from "../../gateway/index.js"
import * as NatsClient from "../../nats/NatsClient.js"
import { Address, Campaign, DeadLetter, type Ids, Message } from "../../protocols/index.js"
import * as NatsFixture from "../fixtures/Nats.js"
import { authSettings, token } from "./Tokens.js"
import { connect, waitUntil } from "../fixtures/WsClient.js"

const LIMITS = { port: 0, host: "127.0.0.1", heartbeatInterval: Duration.millis(200), maxFramesPerSecond: 10, maxSubscriptions: 4, ...authSettings }
const Env = Gateway.layer.pipe(Layer.provide(GatewayConfig.layerWith(LIMITS)), Layer.provideMerge(NatsFixture.layer()))
const registry = Message.registry([...Campaign.all, DeadLetter.DeadLettered])
const hex = (n: number) => randomBytes(n).toString("hex")

const publish = <A, I>(tenant: string, subject: string, def: Message.MessageType<A, I>, payload: A) =>
  Effect.gen(function* () {
    const { js } = yield* NatsClient.NatsClient
    const id = `e-${hex(8)}`
    const env = { id: id as Ids.MessageId, tenant: tenant as Ids.TenantId, from: Address.ext("test"), to: Address.ext("test"), correlationId: id, causationId: null, ts: Date.now(), trace: { traceparent: `00-${hex(16)}-${hex(8)}-01` } }
    return (yield* Effect.promise(() => js.publish(subject, registry.encode(env, def, payload)))).seq
  })

const started = (tenant: string, campaignId: string) =>
  Effect.gen(function* () {
    const { topology } = yield* NatsFixture.NatsFixture
    return yield* publish(tenant, topology.subjects.event(tenant, "campaign", campaignId, Campaign.CampaignStarted.type), Campaign.CampaignStarted, {
      campaignId: campaignId as Ids.CampaignId, name: `campaign ${campaignId}`, goal: "g", targetCount: 3, budget: { maxActions: 9, maxCostUsd: 1 }
    })
  })

describe("Gateway connections", () => {
  layer(Env, { excludeTestServices: true, timeout: "30 seconds" })("with real NATS and ws clients", (it) => {
    it.scoped("one connection follows several campaigns and the tenant's feeds, never another tenant's", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { topology } = yield* NatsFixture.NatsFixture
        yield* started("acme", "a1")
        yield* started("acme", "a2")
        yield* started("globex", "g1")
        yield* publish("acme", topology.subjects.deadLetter("acme", "InvalidPayload"), DeadLetter.DeadLettered, {
          reason: "InvalidPayload", error: { _tag: "InvalidPayload", message: "bad" }, receiver: "ext:command-router", subject: "x", stream: null, streamSeq: null,
          deliveries: 1, originalType: "campaign.start", originalId: null, headers: {}, dataBase64: Buffer.from("hello").toString("base64"), at: Date.now()
        })
        const c = yield* connect(`${gw.url}?token=${yield* Effect.promise(() => token("acme", "viewer"))}`)
        c.send({ op: "watch", feed: "campaigns" })
        c.send({ op: "watch", feed: "dead-letters" })
        c.send({ op: "subscribe", campaignId: "a1" })
        c.send({ op: "subscribe", campaignId: "a2" })
        c.send({ op: "subscribe", campaignId: "g1" }) // another tenant's campaign id: filtered by the token's tenant
        const feed = yield* Effect.promise(() => c.until("3 feed messages", (fs) => { const f = fs.filter((x) => x.op === "feed"); return f.length >= 3 ? f : undefined }))
        const starts = feed.filter((f) => f.op === "feed" && f.feed === "campaigns").map((f) => (f as any).payload.campaignId)
        expect(starts.sort()).toEqual(["a1", "a2"])
        const dl = feed.find((f) => f.op === "feed" && f.feed === "dead-letters") as any
        expect(dl.payload).toMatchObject({ reason: "InvalidPayload", dataBytes: 5 })
        expect(dl.payload.dataBase64).toBeUndefined()
        yield* Effect.promise(() => c.eventsUntil("a1", 1))
        yield* Effect.promise(() => c.eventsUntil("a2", 1))
        yield* started("acme", "a3")
        yield* Effect.promise(() => c.until("a3 in the feed", (fs) => fs.some((f) => f.op === "feed" && (f as any).payload.campaignId === "a3") || undefined))
        expect(c.events("g1")).toEqual([])
        expect(c.frames.some((f) => JSON.stringify(f).includes("globex"))).toBe(false)
      }))

    it.scoped("clients that caught up share one live consumer; each still sees every event once, in order", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const { topology } = yield* NatsFixture.NatsFixture
        const { jsm } = yield* NatsClient.NatsClient
        const subject = topology.subjects.event("acme", "campaign", "fan", Campaign.CampaignProgress.type)
        const progress = (i: number) =>
          publish("acme", subject, Campaign.CampaignProgress, {
            campaignId: "fan" as Ids.CampaignId,
            counts: { targeted: 200, dispatched: i, inProgress: 0, completed: i, reached: 0, replied: 0, converted: 0, skipped: 0, failed: 0 }
          })
        const seqs: Array<number> = []
        for (let i = 0; i < 50; i++) seqs.push(yield* progress(i))
        const t = yield* Effect.promise(() => token("acme", "viewer"))
        const clients = yield* Effect.all(Array.from({ length: 6 }, () => connect(`${gw.url}?token=${t}`)))
        // they join at different points while events keep coming
        for (const [i, c] of clients.entries()) {
          c.send({ op: "subscribe", campaignId: "fan", fromSeq: seqs[i * 8]! })
          for (let k = 0; k < 10; k++) seqs.push(yield* progress(50 + i * 10 + k))
        }
        for (const [i, c] of clients.entries()) {
          const expected = seqs.slice(i * 8)
          const got = yield* Effect.promise(() => c.eventsUntil("fan", expected.length))
          expect(got.map((e) => e.seq), `client ${i}`).toEqual(expected)
        }
        yield* waitUntil("one shared live tail", () => /nexus_gateway_live_tails 1\n/.test(gw.metrics()) && /nexus_gateway_live_subscriptions 6\n/.test(gw.metrics()))
        const consumers = yield* Effect.promise(async () => {
          let n = 0
          for await (const ci of jsm.consumers.list(topology.subjects.streams.events)) if (ci.config.filter_subject?.includes(".fan.")) n++
          return n
        })
        expect(consumers, "one consumer for six clients").toBe(1)
        const last = yield* progress(999)
        for (const c of clients) expect((yield* Effect.promise(() => c.eventsUntil("fan", 1))).at(-1)!.seq <= last).toBe(true)
        yield* Effect.forEach(clients, (c, i) => Effect.promise(() => c.until("the last event", () => (c.events("fan").at(-1)?.seq === last ? true : undefined))).pipe(Effect.as(i)))
      }))

    it.scoped("cuts a peer that stops answering pings; a live one stays", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const t = yield* Effect.promise(() => token("acme", "viewer"))
        const alive = yield* connect(`${gw.url}?token=${t}`)
        const dead = yield* Effect.acquireRelease(
          Effect.promise(() => new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`${gw.url}?token=${t}`, { autoPong: false })
            ws.once("open", () => resolve(ws))
            ws.once("error", reject)
          })),
          (ws) => Effect.sync(() => ws.terminate())
        )
        const closed = yield* Effect.promise(() => new Promise<number>((resolve) => dead.once("close", (code) => resolve(code))))
        expect(closed, "an abnormal close: the gateway terminated the socket").toBe(1006)
        expect(alive.ws.readyState).toBe(WebSocket.OPEN)
        expect(gw.metrics()).toMatch(/nexus_gateway_heartbeat_timeouts_total \d+/)
      }))

    it.scoped("drops frames over the rate limit with an error frame, and closes a client that floods", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const c = yield* connect(`${gw.url}?token=${yield* Effect.promise(() => token("acme", "viewer"))}`)
        for (let i = 0; i < 12; i++) c.send({ op: "ping" })
        expect((yield* Effect.promise(() => c.next("error"))).code).toBe("rate_limited")
        expect(c.ws.readyState).toBe(WebSocket.OPEN)
        for (let i = 0; i < 40; i++) c.send({ op: "ping" })
        expect(yield* Effect.promise(() => c.closed)).toEqual({ code: 1008, reason: "rate limit exceeded" })
      }))

    it.scoped("closes the connection when its token expires", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const c = yield* connect(`${gw.url}?token=${yield* Effect.promise(() => token("acme", "viewer", { ttlSec: 2 }))}`)
        expect(yield* Effect.promise(() => c.closed)).toEqual({ code: 4001, reason: "token expired" })
        yield* waitUntil("the connection to be gone", () => gw.connections() === 0)
      }))
  })

  it.effect("a gateway without a JWT secret or JWKS URL does not start", () =>
    Effect.gen(function* () {
      const noKey = Gateway.layer.pipe(
        Layer.provide(GatewayConfig.layerWith({ port: 0, jwtSecret: Option.none(), jwksUrl: Option.none() })),
        Layer.provideMerge(NatsFixture.layer())
      )
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(noKey)))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("GATEWAY_JWT_SECRET")
    }))
})
