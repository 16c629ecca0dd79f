/**
 * Gateway against a real NATS JetStream (fresh prefix per suite, see fixtures/Nats.ts) and
 * real `ws` clients: filtering by tenant and campaign, order, resume from a sequence, live
 * events, bad frames, refused upgrades, health endpoints, and slow-client eviction with
 * bounded buffering.
 */
import { randomBytes } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { WebSocket } from "ws"
import { Frame, Gateway, GatewayConfig } from "../../gateway/index.js"
import * as NatsClient from "../../nats/NatsClient.js"
import * as NatsConfig from "../../nats/NatsConfig.js"
import { Address, Campaign, Ids, Message } from "../../protocols/index.js"
import * as NatsFixture from "../fixtures/Nats.js"
import { authSettings, token } from "./Tokens.js"
import { connect, getJson, refusedUpgrade, waitUntil } from "../fixtures/WsClient.js"

const LIMITS = {
  port: 0,
  host: "127.0.0.1",
  maxFrameBytes: 1024,
  maxBufferedBytes: 64 * 1024,
  slowClientTimeout: Duration.seconds(1),
  maxSubscriptions: 2,
  pullBatch: 16,
  maxFramesPerSecond: 1000,
  ...authSettings
} as const

const Env = Gateway.layer.pipe(
  Layer.provide(GatewayConfig.layerWith(LIMITS)),
  Layer.provideMerge(NatsFixture.layer())
)

const registry = Message.registry(Campaign.all)
const hex = (bytes: number) => randomBytes(bytes).toString("hex")

type Event = Frame.Event

/** Publishes `count` ContactProgress events of one campaign; returns their stream sequences. */
const publishProgress = (tenant: string, campaignId: string, count: number, reasonBytes = 0) =>
  Effect.gen(function* () {
    const { js } = yield* NatsClient.NatsClient
    const { topology } = yield* NatsFixture.NatsFixture
    const subject = topology.subjects.event(tenant, "campaign", campaignId, Campaign.ContactProgress.type)
    const reason = reasonBytes > 0 ? "x".repeat(reasonBytes) : null
    const acks = yield* Effect.promise(() =>
      Promise.all(
        Array.from({ length: count }, (_, i) => {
          const bytes = registry.encode(
            {
              id: `evt:${campaignId}:${hex(8)}` as Ids.MessageId,
              tenant: tenant as Ids.TenantId,
              from: Address.actor("campaign", campaignId),
              to: Address.topic("campaign", campaignId),
              correlationId: `start:${campaignId}`,
              causationId: null,
              ts: Date.now(),
              trace: { traceparent: `00-${hex(16)}-${hex(8)}-01` }
            },
            Campaign.ContactProgress,
            {
              campaignId: campaignId as Ids.CampaignId,
              contactId: `contact-${i}` as Ids.ContactId,
              phase: "engaged",
              channel: "email",
              status: null,
              reason
            }
          )
          return js.publish(subject, bytes)
        })
      )
    )
    return acks.map((a) => a.seq)
  })

/** Number of consumers on the suite's events stream. */
const consumerCount = Effect.gen(function* () {
  const { jsm } = yield* NatsClient.NatsClient
  const { topology } = yield* NatsFixture.NatsFixture
  return yield* Effect.promise(async () => {
    let n = 0
    for await (const _ of jsm.consumers.list(topology.subjects.streams.events)) n++
    return n
  })
})

/** Re-reads the events stream's consumer count until it is `n` (deletion is asynchronous). */
const consumersBecome = (n: number) =>
  consumerCount.pipe(
    Effect.repeat({ until: (count) => count === n, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`expected ${n} consumers on the events stream`) })
  )

const TENANT = "acme"
const OTHER_TENANT = "globex"
const TOKENS: Record<string, string> = { [TENANT]: await token(TENANT, "viewer"), [OTHER_TENANT]: await token(OTHER_TENANT, "viewer") }
const seqsOf = (events: ReadonlyArray<Event>) => events.map((e) => e.seq)

describe("Gateway", () => {
  layer(Env, { excludeTestServices: true, timeout: "30 seconds" })("with real NATS and ws clients", (it) => {
    it.scoped("streams exactly one campaign's events of one tenant, in order, then live ones", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const first = yield* publishProgress(TENANT, "c1", 10)
        yield* publishProgress(TENANT, "c2", 5)
        yield* publishProgress(OTHER_TENANT, "c1", 5)
        const second = yield* publishProgress(TENANT, "c1", 10)
        const expected = [...first, ...second]

        const client = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        client.send({ op: "subscribe", campaignId: "c1" })
        expect(yield* Effect.promise(() => client.next("subscribed"))).toEqual({ op: "subscribed", campaignId: "c1", fromSeq: 1 })
        const stored = yield* Effect.promise(() => client.eventsUntil("c1", expected.length))
        expect(seqsOf(stored), "stored phase: c1 of acme, in stream order").toEqual(expected)
        expect(stored.every((e) => e.type === Campaign.ContactProgress.type && e.id.startsWith("evt:c1:"))).toBe(true)
        expect(stored.map((e) => (e.payload as { contactId: string }).contactId)).toEqual([
          ...Array.from({ length: 10 }, (_, i) => `contact-${i}`),
          ...Array.from({ length: 10 }, (_, i) => `contact-${i}`)
        ])

        // live phase: events published after the subscription, and nothing else in between
        yield* publishProgress(OTHER_TENANT, "c1", 3)
        const live = yield* publishProgress(TENANT, "c1", 5)
        const all = yield* Effect.promise(() => client.eventsUntil("c1", expected.length + live.length))
        expect(seqsOf(all), "live phase").toEqual([...expected, ...live])
        expect(client.frames.filter((f) => f.op === "event" && f.campaignId !== "c1")).toEqual([])
        expect(gw.connections()).toBe(1)
      }))

    it.scoped("a client resuming from lastSeenSeq + 1 sees exactly the rest", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const seqs: Array<number> = []
        for (let round = 0; round < 4; round++) {
          seqs.push(...(yield* publishProgress(TENANT, "r1", 5)))
          yield* publishProgress(TENANT, "r2", 2) // gaps inside r1's sequence range
        }
        const a = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        a.send({ op: "subscribe", campaignId: "r1" })
        const seenByA = (yield* Effect.promise(() => a.eventsUntil("r1", 7))).slice(0, 7)
        yield* Effect.promise(() => a.close())
        const lastSeen = seenByA[seenByA.length - 1]!.seq

        const b = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        b.send({ op: "subscribe", campaignId: "r1", fromSeq: lastSeen + 1 })
        expect((yield* Effect.promise(() => b.next("subscribed"))).fromSeq).toBe(lastSeen + 1)
        const rest = yield* Effect.promise(() => b.eventsUntil("r1", seqs.length - 7))
        // a sentinel published afterwards proves nothing else was queued before it
        const [sentinel] = yield* publishProgress(TENANT, "r1", 1)
        const withSentinel = yield* Effect.promise(() => b.eventsUntil("r1", seqs.length - 7 + 1))
        expect(seqsOf(rest), "resumed events").toEqual(seqs.slice(7))
        expect(seqsOf([...seenByA, ...withSentinel]), "seen before + after resume").toEqual([...seqs, sentinel])

        // resuming after the very last event: a start sequence past the end of the stream
        const c = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        c.send({ op: "subscribe", campaignId: "r1", fromSeq: sentinel! + 1 })
        yield* Effect.promise(() => c.next("subscribed"))
        const [after] = yield* publishProgress(TENANT, "r1", 1)
        expect(seqsOf(yield* Effect.promise(() => c.eventsUntil("r1", 1))), "resume at the end").toEqual([after])
      }))

    it.scoped("answers bad frames with error frames and keeps the connection", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const client = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        const expectError = (frame: unknown, code: string) =>
          Effect.gen(function* () {
            client.send(frame)
            const error = yield* Effect.promise(() => client.next("error"))
            expect(error.code, `error code for ${String(frame).slice(0, 40)}`).toBe(code)
          })
        yield* expectError("not json", "bad_frame")
        yield* expectError("[1,2]", "bad_frame")
        yield* expectError(JSON.stringify({ campaignId: "c1" }), "bad_frame")
        yield* expectError(JSON.stringify({ op: "launch" }), "unknown_op")
        yield* expectError(JSON.stringify({ op: "subscribe", campaignId: "a.b" }), "bad_request")
        yield* expectError(JSON.stringify({ op: "subscribe", campaignId: "c1", fromSeq: 0 }), "bad_request")
        yield* expectError(JSON.stringify({ op: "subscribe", campaignId: "c1", fromSeq: "1" }), "bad_request")
        yield* expectError(JSON.stringify({ op: "ping", pad: "x".repeat(LIMITS.maxFrameBytes) }), "frame_too_large")
        yield* expectError(JSON.stringify({ op: "unsubscribe", campaignId: "nope" }), "not_subscribed")
        client.ws.send(Buffer.from(JSON.stringify({ op: "ping" })), { binary: true })
        expect((yield* Effect.promise(() => client.next("error"))).code).toBe("bad_frame")

        client.send({ op: "ping" })
        expect(yield* Effect.promise(() => client.next("pong"))).toEqual({ op: "pong" })

        // subscriptions still work; after `unsubscribed` no event of that campaign arrives
        client.send({ op: "subscribe", campaignId: "u1" })
        client.send({ op: "subscribe", campaignId: "u2" })
        yield* Effect.promise(() => client.until("two subscribed", (fs) => (fs.filter((f) => f.op === "subscribed").length === 2 ? true : undefined)))
        yield* consumersBecome(2)
        client.send({ op: "subscribe", campaignId: "u3" })
        expect(yield* Effect.promise(() => client.next("error"))).toMatchObject({ code: "too_many_subscriptions", campaignId: "u3" })
        client.send({ op: "unsubscribe", campaignId: "u1" })
        expect(yield* Effect.promise(() => client.next("unsubscribed"))).toEqual({ op: "unsubscribed", campaignId: "u1" })
        yield* consumersBecome(1)
        yield* publishProgress(TENANT, "u1", 3)
        const [u2] = yield* publishProgress(TENANT, "u2", 1)
        expect(seqsOf(yield* Effect.promise(() => client.eventsUntil("u2", 1)))).toEqual([u2])
        expect(client.events("u1")).toEqual([])
        expect(client.ws.readyState).toBe(WebSocket.OPEN)
        yield* Effect.promise(() => client.close())
        yield* consumersBecome(0)
      }))

    it.scoped("refuses upgrades without a valid token, for another tenant, or on another path", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const missing = yield* refusedUpgrade(gw.url)
        expect(missing.status, "no token").toBe(401)
        expect(missing.body).toMatchObject({ error: "unauthenticated" })
        expect((yield* refusedUpgrade(`${gw.url}?token=`)).status, "empty token").toBe(401)
        expect((yield* refusedUpgrade(`${gw.url}?token=not.a.jwt`)).status, "garbage").toBe(401)
        const expired = yield* refusedUpgrade(`${gw.url}?token=${yield* Effect.promise(() => token(TENANT, "viewer", { ttlSec: -60 }))}`)
        expect(expired, "expired").toMatchObject({ status: 401, body: { message: "the token has expired" } })
        const forged = yield* refusedUpgrade(`${gw.url}?token=${yield* Effect.promise(() => token(TENANT, "admin", { secret: "another-secret-of-at-least-32-characters!" }))}`)
        expect(forged, "forged").toMatchObject({ status: 401, body: { message: "the token's signature does not verify" } })
        // the tenant comes from the token; asking for another one is refused
        expect((yield* refusedUpgrade(`${gw.url}?token=${TOKENS[TENANT]}&tenant=${OTHER_TENANT}`)).status).toBe(403)
        expect((yield* refusedUpgrade(`${gw.httpUrl}/other?token=${TOKENS[TENANT]}`)).status).toBe(404)
        // a header works as well as the query parameter
        const viaHeader = yield* Effect.acquireRelease(
          Effect.promise(
            () =>
              new Promise<WebSocket>((resolve, reject) => {
                const ws = new WebSocket(gw.url, { headers: { authorization: `Bearer ${TOKENS[TENANT]}` } })
                ws.once("open", () => resolve(ws))
                ws.once("error", reject)
              })
          ),
          (ws) => Effect.sync(() => ws.terminate())
        )
        expect(viaHeader.readyState).toBe(WebSocket.OPEN)
      }))

    it.scoped("answers health endpoints", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        expect(yield* getJson(`${gw.httpUrl}/health/live`)).toEqual({ status: 200, body: { status: "ok" } })
        expect(yield* getJson(`${gw.httpUrl}/health/ready`)).toEqual({ status: 200, body: { status: "ready" } })
        expect((yield* getJson(`${gw.httpUrl}/nope`)).status).toBe(404)
        expect((yield* getJson(`${gw.httpUrl}/ws`)).status).toBe(426)

        // a gateway whose events stream does not exist is live but not ready
        const unprovisioned = Gateway.layer.pipe(
          Layer.provide(GatewayConfig.layerWith(LIMITS)),
          Layer.provide(NatsClient.layer.pipe(Layer.provideMerge(NatsConfig.layerWith({ prefix: NatsFixture.randomPrefix() }))))
        )
        const other = Context.get(yield* Layer.build(unprovisioned), Gateway.Gateway)
        expect((yield* getJson(`${other.httpUrl}/health/live`)).status).toBe(200)
        const notReady = yield* getJson(`${other.httpUrl}/health/ready`)
        expect(notReady.status).toBe(503)
        expect(notReady.body).toMatchObject({ status: "unavailable" })
      }))

    it.scoped("on release closes every client with 1001 and deletes their consumers", () =>
      Effect.gen(function* () {
        yield* consumersBecome(0)
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(Gateway.layer.pipe(Layer.provide(GatewayConfig.layerWith(LIMITS))), scope)
        const gw = Context.get(ctx, Gateway.Gateway)
        const clients = yield* Effect.all([connect(`${gw.url}?token=${TOKENS[TENANT]}`), connect(`${gw.url}?token=${TOKENS[OTHER_TENANT]}`)])
        for (const c of clients) c.send({ op: "subscribe", campaignId: "s1" })
        yield* Effect.forEach(clients, (c) => Effect.promise(() => c.next("subscribed")))
        yield* consumersBecome(2)
        yield* Scope.close(scope, Exit.void)
        for (const c of clients) expect(yield* Effect.promise(() => c.closed)).toEqual({ code: 1001, reason: "gateway stopping" })
        expect(yield* consumerCount).toBe(0)
        const refused = yield* Effect.promise(() => fetch(`${gw.httpUrl}/health/live`).then(() => "answered", () => "refused"))
        expect(refused).toBe("refused")
      }))

    it.scoped("closes a client that stops reading with 4008 and keeps its buffer bounded", () =>
      Effect.gen(function* () {
        const gw = yield* Gateway.Gateway
        const client = yield* connect(`${gw.url}?token=${TOKENS[TENANT]}`)
        client.send({ op: "subscribe", campaignId: "slow" })
        yield* Effect.promise(() => client.next("subscribed"))
        yield* waitUntil("only this client connected", () => gw.connections() === 1)
        client.ws.pause() // stops reading the socket: the kernel buffers fill, then the gateway's

        let maxBuffered = 0
        const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, gw.bufferedBytes())), 1)
        yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sampler)))
        const eventBytes = 8 * 1024
        let published = 0
        // kernel socket buffers absorb a few MB first; publish until the gateway has to queue,
        // each batch once the gateway wrote the last one (publishing races ahead of its pulls)
        const written = () => Number(/nexus_gateway_event_delivery_seconds_count (\d+)/.exec(gw.metrics())?.[1] ?? 0)
        const queueing = () => gw.bufferedBytes() > LIMITS.maxBufferedBytes || gw.connections() === 0
        const before = written()
        while (!queueing()) {
          if (published >= 4000) throw new Error(`gateway still not queueing after ${published} events of ${eventBytes} bytes`)
          yield* publishProgress(TENANT, "slow", 100, eventBytes)
          published += 100
          yield* waitUntil("the gateway to write the batch or to queue", () => queueing() || written() - before >= published)
        }
        // the gateway is stalled: these are pulled (at most pullBatch of them) but never sent
        yield* publishProgress(TENANT, "slow", 100, eventBytes)
        published += 100
        yield* waitUntil("the slow client to be closed", () => gw.connections() === 0)
        clearInterval(sampler)

        // over the limit by at most one event frame (each send waits until under the limit)
        expect(maxBuffered, `max bytes queued, published ${published} events`).toBeGreaterThan(LIMITS.maxBufferedBytes)
        expect(maxBuffered).toBeLessThanOrEqual(LIMITS.maxBufferedBytes + eventBytes + 1024)

        client.ws.resume()
        expect(yield* Effect.promise(() => client.closed)).toEqual({ code: 4008, reason: "slow consumer" })
        const received = client.events("slow")
        expect(received.length).toBeLessThanOrEqual(published - 100)
        expect(seqsOf(received)).toEqual([...seqsOf(received)].sort((x, y) => x - y))
      }))
  })
})
