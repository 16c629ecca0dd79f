/**
 * Gateway benchmark: event-to-WebSocket latency with many connected clients on loopback,
 * and the gateway's memory with them. The gateway runs in this process on a fresh subject
 * prefix (the events stream provisioned, deleted afterwards); clients run in child
 * processes (so their CPU does not count against the gateway), each subscribed to one
 * campaign from the live end of its stream. Events are published one at a time at a steady
 * pace with their creation time in the envelope; a sample is arrival time minus that time,
 * per client and event (the full hop: JetStream, the gateway's consumer, the socket, and
 * the client process reading it: on two cores the clients' own CPU shows in the figure).
 * The gateway's own histogram gives the time to the socket write, without the clients.
 *
 * Default: 1,000 clients. `--full`: also 10,000 clients (memory reported for it).
 * The NexusCRM paper reports 15 ms p50 / 35 ms p95 at 1,000 connections.
 */
import { randomBytes } from "node:crypto"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import * as Auth from "../../gateway/Auth.js"
import { Gateway, GatewayConfig } from "../../gateway/index.js"
import { NatsClient, NatsConfig, Provision, Topology } from "../../nats/index.js"
import { Address, Campaign, type Ids, Message } from "../../protocols/index.js"
import { log, percentile, row, type Row, type Suite, sleep } from "../Bench.js"
import * as Clients from "../gateway/Clients.js"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const registry = Message.registry(Campaign.all)
const mb = (bytes: number) => Math.round((bytes / (1024 * 1024)) * 10) / 10

/** The upper bound (ms) of the histogram bucket holding the `p`-th percentile. */
const bucketPercentile = (metrics: string, p: number): number => {
  const buckets = [...metrics.matchAll(/nexus_gateway_event_delivery_seconds_bucket\{le="([^"]+)"\} (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const)
  const total = buckets.at(-1)?.[1] ?? 0
  const hit = buckets.find(([, n]) => n >= (p / 100) * total)
  return hit === undefined || total === 0 ? Number.NaN : hit[0] * 1000
}

interface Measured {
  /** Gateway side: from the event's creation to its write to the socket (histogram bucket bound). */
  readonly gatewayP50: number
  readonly gatewayP99: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly samples: number
  readonly rssDeltaMb: number
  readonly heapDeltaMb: number
  readonly connectSec: number
}

const measure = (clients: number, events: number, spacingMs: number): Promise<Measured> => {
  const prefix = `bench${randomBytes(4).toString("hex")}`
  const secret = randomBytes(32).toString("base64url")
  const topology = Topology.make({ prefix, partitions: 4, replicas: 1 })
  const nats = NatsClient.layer.pipe(Layer.provideMerge(NatsConfig.layerWith({ prefix, partitions: 4, replicas: 1, name: `bench-${prefix}` })))
  const program = Effect.gen(function* () {
    const scope = yield* Scope.make()
    yield* Effect.acquireRelease(Provision.streamsAndBuckets(topology), () => Provision.destroy(topology))
    global.gc?.()
    const before = process.memoryUsage()
    const gwCtx = yield* Layer.buildWithScope(
      Gateway.layer.pipe(
        Layer.provide(
          GatewayConfig.layerWith({
            port: 0,
            host: "127.0.0.1",
            jwtSecret: Option.some(Redacted.make(secret)),
            maxFramesPerSecond: 100,
            heartbeatInterval: Duration.seconds(60),
            maxSubscriptions: 4
          })
        )
      ),
      scope
    )
    const gw = Context.get(gwCtx, Gateway.Gateway)
    const { js } = yield* NatsClient.NatsClient
    const subject = topology.subjects.event("bench", "campaign", "live", Campaign.CampaignProgress.type)
    const jwt = yield* Effect.promise(() => Auth.issue(secret, { tenant: "bench", role: "viewer", sub: "bench" }))
    const url = `${gw.url}?token=${jwt}`
    const procs = Math.min(4, Math.max(1, Math.ceil(clients / 500)))
    const t0 = Date.now()
    const children = Array.from({ length: procs }, (_, i) =>
      Clients.start(url, "live", 1, Math.floor(clients / procs) + (i < clients % procs ? 1 : 0), root)
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((c) => c.child.kill("SIGKILL"))))
    yield* Effect.promise(() => Promise.all(children.map((c) => c.ready)))
    const connectSec = (Date.now() - t0) / 1000
    log(`gateway bench: ${clients} clients subscribed in ${connectSec.toFixed(1)} s`)
    yield* Effect.promise(() => sleep(500))
    global.gc?.()
    const after = process.memoryUsage()
    for (let i = 0; i < events; i++) {
      const id = `b-${i}-${randomBytes(4).toString("hex")}`
      const bytes = registry.encode(
        { id: id as Ids.MessageId, tenant: "bench" as Ids.TenantId, from: Address.actor("campaign", "live"), to: Address.topic("campaign", "live"), correlationId: "live", causationId: null, ts: Date.now(), trace: { traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01` } },
        Campaign.CampaignProgress,
        { campaignId: "live" as Ids.CampaignId, counts: { targeted: 100, dispatched: i, inProgress: 1, completed: i, reached: 0, replied: 0, converted: 0, skipped: 0, failed: 0 } }
      )
      yield* Effect.promise(() => js.publish(subject, bytes))
      yield* Effect.promise(() => sleep(spacingMs))
    }
    yield* Effect.promise(() => sleep(Math.max(1000, clients / 5)))
    const samples = (yield* Effect.promise(() => Promise.all(children.map((c) => c.stop())))).flat()
    const metrics = gw.metrics()
    yield* Scope.close(scope, Exit.void)
    if (samples.length < clients * events * 0.99) log(`gateway bench: only ${samples.length} of ${clients * events} deliveries arrived`)
    return {
      gatewayP50: bucketPercentile(metrics, 50),
      gatewayP99: bucketPercentile(metrics, 99),
      p50: percentile(samples, 50),
      p95: percentile(samples, 95),
      p99: percentile(samples, 99),
      samples: samples.length,
      rssDeltaMb: mb(after.rss - before.rss),
      heapDeltaMb: mb(after.heapUsed + after.external - before.heapUsed - before.external),
      connectSec
    }
  })
  return Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(nats)))
}

const suite: Suite = {
  name: "gateway",
  run: async ({ full }) => {
    const rows: Array<Row> = []
    const sizes = full ? [1_000, 10_000] : [1_000]
    for (const n of sizes) {
      const m = await measure(n, n >= 10_000 ? 20 : 40, n >= 10_000 ? 250 : 50)
      const k = n.toLocaleString("en-US")
      rows.push(
        row(`gateway: event→WebSocket p50, ${k} clients`, m.p50, "ms", { target: "<= 15 ms (paper p50)", met: m.p50 <= 15 }),
        row(`gateway: event→WebSocket p95, ${k} clients`, m.p95, "ms", { target: "<= 35 ms (paper p95)", met: m.p95 <= 35 }),
        row(`gateway: event→WebSocket p99, ${k} clients`, m.p99, "ms"),
        row(`gateway: event→socket write p50 (gateway side, bucket bound), ${k} clients`, m.gatewayP50, "ms"),
        row(`gateway: event→socket write p99 (gateway side, bucket bound), ${k} clients`, m.gatewayP99, "ms"),
        row(`gateway: deliveries measured, ${k} clients`, m.samples, "frames"),
        row(`gateway: connect+subscribe time, ${k} clients`, m.connectSec, "s")
      )
      if (n === sizes[sizes.length - 1]) {
        rows.push(
          row(`gateway: memory (RSS growth) at ${k} clients`, m.rssDeltaMb, "MB"),
          row(`gateway: memory (heap+external growth) at ${k} clients`, m.heapDeltaMb, "MB")
        )
      }
    }
    return rows
  }
}

export default suite
