/**
 * The fault test of issue 3: a 3-node NATS cluster (R3 streams and buckets), three worker
 * processes, a campaign of 10,000 contacts, and a chaos driver that SIGKILLs a random worker
 * every few seconds (restarting it) and restarts one NATS server once. Asserted from the
 * ledgers and the event stream, not from logs: every contact reaches exactly one terminal
 * state, no contact got the same step twice (delivery ledger), no two lock-holding intervals
 * on one contact overlapped (a watch of the lock bucket), spend stayed within the budget (ledger
 * and price table), nothing was lost.
 * Prints kills, redeliveries, duplicates, failover times and throughput.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import * as ChannelPrices from "../../actors/channels/ChannelPrices.js"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import * as Provision from "../../nats/Provision.js"
import { buckets } from "../../nats/Topology.js"
import { Campaign, Ids } from "../../protocols/index.js"
import * as Database from "../../storage/Database.js"
import * as DemoData from "../../storage/DemoData.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Crm from "../fixtures/Crm.js"
import { randomPrefix } from "../fixtures/Nats.js"
import { NatsCluster } from "../fixtures/NatsCluster.js"
import * as Postgres from "../fixtures/Postgres.js"
import { spawnWorker, type WorkerProcess } from "../fixtures/Worker.js"

const CONTACTS = 10_000
const WORKERS = 3
const PARTITIONS = 16
const KILL_EVERY_MS = 4000
/** Enough for every contact's worst case to be reserved a window at a time, not for much more. */
const BUDGET_USD = 200
const tenant = Ids.TenantId.make("chaos")

const percentile = (xs: ReadonlyArray<number>, p: number) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

// Two to four minutes on a 2-core machine. NEXUS_CHAOS=0 skips it (e.g. for a quick local run).
describe.skipIf(process.env.NEXUS_CHAOS === "0")("chaos: 3-node NATS cluster, 3 workers, SIGKILL, one NATS server restart", () => {
it.scopedLive(
  "survives SIGKILLed workers and a NATS server restart with no contact lost, repeated or over budget",
  () =>
    Effect.gen(function* () {
      const cluster = yield* Effect.acquireRelease(
        Effect.promise(() => NatsCluster.start({ size: 3 })),
        (c) => Effect.promise(() => c.shutdown())
      )
      const prefix = randomPrefix()
      const nats = Deployment.layerWith({ servers: cluster.servers, prefix, partitions: PARTITIONS, replicas: 3, name: "chaos-test" })
      const ctx = yield* Layer.build(nats)
      const db = yield* Postgres.freshDatabase
      const repos = CrmApp.repositories.pipe(Layer.provide(Database.layerUrl(db.url)))
      yield* DemoData.load(tenant, CONTACTS, 21).pipe(Effect.provide(repos))

      const program = Effect.gen(function* () {
        const { subjects, topology } = yield* Deployment.Deployment
        const { kvm } = yield* NatsClient
        yield* Effect.addFinalizer(() => Provision.destroy(topology).pipe(Effect.ignore))
        const placement = yield* Effect.promise(() => kvm.open(buckets(prefix).placement))
        // the ledger of lock-holding intervals: every operation on the lock bucket, in order
        const lockBucket = yield* Effect.promise(() => kvm.open(buckets(prefix).locks))
        const lockOps: Array<{ key: string; op: string; holder: string | null }> = []
        const lockWatch = yield* Effect.acquireRelease(
          Effect.promise(() => lockBucket.watch({ key: ">" })),
          (w) => Effect.sync(() => w.stop())
        )
        yield* Effect.forkScoped(
          Effect.promise(async () => {
            for await (const e of lockWatch) {
              const holder = e.operation === "PUT" ? (JSON.parse(new TextDecoder().decode(e.value)) as { h: string }).h : null
              lockOps.push({ key: e.key, op: e.operation, holder })
            }
          })
        )
        // every worker's last counters (a killed worker's last report before it died)
        const { nc } = yield* NatsClient
        const lastCounters = new Map<string, Record<string, number>>()
        const metricsSub = nc.subscribe(subjects.nodeMetricsAll, {
          callback: (_e, msg) => {
            try {
              const p = (JSON.parse(new TextDecoder().decode(msg.data)) as { payload: { node: string; counters: Record<string, number> } }).payload
              lastCounters.set(p.node, p.counters)
            } catch {
              // not a report
            }
          }
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => metricsSub.unsubscribe()))
        const env = (i: number) => ({
          NATS_URL: cluster.urls,
          NEXUS_PREFIX: prefix,
          NEXUS_PARTITIONS: String(PARTITIONS),
          NEXUS_REPLICAS: "3",
          DATABASE_URL: db.url,
          NEXUS_NODE_NAME: `w${i}`,
          // the driver waits for "runtime node up"; placement's moves (debug) explain a slow failover
          LOG_LEVEL: "Debug"
        })
        const workers: Array<WorkerProcess> = []
        for (let i = 0; i < WORKERS; i++) workers.push(yield* spawnWorker(env(i)))
        // every worker process of the run, killed ones included (their logs explain a slow failover)
        const spawned: Array<WorkerProcess> = [...workers]
        yield* Effect.forEach(workers, (w) => w.waitForLog(/runtime node up/, 60_000), { discard: true })

        // who holds which partition now (from the placement bucket)
        // by a get per partition, each a request with its own timeout, and the whole read
        // bounded: a stalled read counts as "not yet" and is made again. (A key listing opens
        // a consumer; once, after the NATS restart, it stalled for 30 s, and the test took
        // a 4.5 s failover for a 34 s one.)
        const holders = Effect.promise(async () => {
          const out = new Map<number, string>()
          const entries = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => placement.get(`part.${p}`)))
          entries.forEach((e, p) => {
            if (e && e.operation === "PUT") out.set(p, new TextDecoder().decode(e.value))
          })
          return out
        }).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("placement read stalled") }))
        const allPlaced = Effect.map(holders, (h) => (h.size === PARTITIONS ? h : undefined))
        yield* Crm.waitFor("every partition placed", allPlaced, 30_000)

        const campaignId = Ids.CampaignId.make("cmp-chaos")
        const started = Date.now()
        yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
          campaignId,
          name: "chaos",
          goal: "email every lead",
          audience: {},
          channels: ["email", "sms"],
          targetCount: CONTACTS,
          budget: { maxActions: CONTACTS, maxCostUsd: BUDGET_USD }
        })
        const events = subjects.eventsOf(tenant, "campaign", campaignId)
        const completed = Effect.map(
          Crm.readAll(subjects.streams.events, subjects.event(tenant, "campaign", campaignId, "event.campaign-completed")),
          (r) => r.length > 0
        ).pipe(Effect.catchAllCause(() => Effect.succeed(false)))

        // the chaos driver
        const failovers: Array<number> = []
        let kills = 0
        let natsRestarts = 0
        const driver = yield* Effect.fork(
          Effect.gen(function* () {
            let round = 0
            while (!(yield* completed)) {
              yield* Effect.sleep(KILL_EVERY_MS)
              if (yield* completed) break
              round++
              if (round === 2 && natsRestarts === 0) {
                // one NATS server goes down and comes back
                const victim = round % 3
                yield* Effect.promise(() => cluster.stop(victim))
                yield* Effect.sleep("1500 millis")
                yield* Effect.promise(() => cluster.restart(victim))
                natsRestarts++
                continue
              }
              const i = Math.floor(Math.random() * WORKERS)
              const before = yield* Crm.waitFor("placement readable", holders, 30_000)
              const victimNode = [...new Set(before.values())].find((n) => n.startsWith(`w${i}-`))
              const theirs = [...before].filter(([, n]) => n === victimNode).map(([p]) => p)
              const killedAt = Date.now()
              yield* workers[i]!.stop("SIGKILL")
              kills++
              workers[i] = yield* spawnWorker(env(i))
              spawned.push(workers[i]!)
              const restarted = workers[i]!
              if (theirs.length > 0) {
                yield* Crm.waitFor(
                  "the killed node's partitions to move",
                  Effect.map(holders, (h) => (theirs.every((p) => h.has(p) && h.get(p) !== victimNode) ? true : undefined)),
                  30_000
                )
                const took = Date.now() - killedAt
                failovers.push(took)
                if (took > 10_000) {
                  // a slow failover: what each node's placement did (the killed node's log included)
                  const placementLines = (w: WorkerProcess) =>
                    w.log().split("\n").filter((l) => l.includes("placement:")).slice(-40).join("\n")
                  console.log(
                    `chaos: failover of ${victimNode} took ${took} ms (partitions ${theirs.join(",")}); placement logs:\n` +
                      [...spawned].map((w) => `--- worker pid ${w.pid}${w.exited() ? " (exited)" : ""}\n${placementLines(w)}`).join("\n")
                  )
                }
              }
              // the next kill waits for the replacement to be up: the cluster always has two live workers
              yield* restarted.waitForLog(/runtime node up/, 90_000)
            }
          })
        )

        // where work waits when progress stops: every consumer's pending and unacked counts
        const { jsm } = yield* NatsClient
        const consumerReport = Effect.promise(async () => {
          const lines: Array<string> = []
          for (const stream of [subjects.streams.commands, subjects.streams.mailboxes, subjects.streams.work]) {
            for await (const c of jsm.consumers.list(stream)) {
              if (c.num_pending + c.num_ack_pending + c.num_waiting === 0) continue
              lines.push(`  ${stream}/${c.name}: pending ${c.num_pending} unacked ${c.num_ack_pending} redelivered ${c.num_redelivered} waiting ${c.num_waiting} leader ${c.cluster?.leader}`)
            }
          }
          return lines.join("\n")
        }).pipe(Effect.timeout("10 seconds"), Effect.catchAllCause(() => Effect.succeed("  (consumer info unavailable)")))
        const progress = yield* Effect.fork(
          Effect.gen(function* () {
            let last = -1
            while (true) {
              yield* Effect.sleep("10 seconds")
              const n = yield* Crm.readAll(subjects.streams.events, events).pipe(
                Effect.map((r) => r.filter((e) => e.json.type === "event.contact-progress" && e.json.payload.phase === "completed").length),
                Effect.catchAllCause(() => Effect.succeed(-1))
              )
              console.log(`chaos progress: ${n} of ${CONTACTS} contacts terminal after ${((Date.now() - started) / 1000).toFixed(0)} s, kills ${kills}`)
              for (const w of workers) if (w.exited()) console.log(`chaos: worker ${w.pid} has exited; its output:\n${w.log().slice(-4000)}`)
              if (n === last) console.log(`chaos: no progress; consumers with work:\n${yield* consumerReport}\nplacement: ${JSON.stringify([...(yield* holders)])}`)
              last = n
            }
          })
        )
        const all = yield* Crm.waitFor(
          "campaign completion under chaos",
          Effect.map(Crm.readAll(subjects.streams.events, events), (r) =>
            r.some((e) => e.json.type === "event.campaign-completed") ? r : undefined
          ),
          420_000
        )
        const elapsed = (Date.now() - started) / 1000
        yield* Fiber.join(driver)
        yield* Fiber.interrupt(progress)

        const completion = all.find((e) => e.json.type === "event.campaign-completed")!
        const summary = completion.json.payload.summary
        const completedAt = completion.seq
        const terminal = all.filter((e) => e.json.type === "event.contact-progress" && e.json.payload.phase === "completed")
        const perContact = new Map<string, number>()
        for (const e of terminal) perContact.set(e.json.payload.contactId, (perContact.get(e.json.payload.contactId) ?? 0) + 1)
        const deliveries = yield* Effect.flatMap(DeliveryLedger, (l) => l.byCampaign(tenant, campaignId)).pipe(Effect.provide(repos))
        const perContactDeliveries = new Map<string, number>()
        for (const d of deliveries) perContactDeliveries.set(d.contactId, (perContactDeliveries.get(d.contactId) ?? 0) + 1)

        const total = (k: string) => [...lastCounters.values()].reduce((n, c) => n + (c[k] ?? 0), 0)
        // lock intervals: per contact, a new holder only after the previous one let go
        const overlaps: Array<string> = []
        const lockHolders = new Map<string, string | null>()
        for (const o of lockOps) {
          const cur = lockHolders.get(o.key) ?? null
          if (o.op === "PUT" && cur !== null && cur !== o.holder) overlaps.push(`${o.key}: ${o.holder} while ${cur} held it`)
          lockHolders.set(o.key, o.op === "PUT" ? o.holder : null)
        }
        // spend, from the delivery ledger and the price table
        const spentUsd = deliveries.reduce((n, d) => n + ChannelPrices.prices[d.channel as "email" | "sms"].perMessage, 0)
        console.log(
          [
            `chaos: ${CONTACTS} contacts in ${elapsed.toFixed(1)} s = ${(CONTACTS / elapsed).toFixed(0)} contacts/s`,
            `redeliveries ${total("redeliveries")}, duplicates suppressed ${total("duplicatesSuppressed")}, outbox republished ${total("outboxRepublished")}, stale redeliveries skipped ${total("staleSkipped")} (last reports of ${lastCounters.size} worker processes)`,
            `lock operations ${lockOps.length}, overlapping lock intervals ${overlaps.length}; spend $${spentUsd.toFixed(4)} of $${BUDGET_USD} (summary $${summary.costUsd?.toFixed(4)})`,
            `kills ${kills} (SIGKILL), NATS server restarts ${natsRestarts}`,
            `failover p50 ${percentile(failovers, 50)} ms, max ${Math.max(...failovers)} ms over ${failovers.length} failovers`,
            `terminal events ${terminal.length}, deliveries ${deliveries.length}, skipped ${summary.counts.skipped}; ` +
              `summary: completed ${summary.counts.completed}, targeted ${summary.counts.targeted}, actions ${summary.actionsUsed}; ` +
              `contacts terminal after the campaign completed: ${terminal.filter((e) => e.seq > completedAt).length}`
          ].join("\n")
        )

        // every contact exactly one terminal state; nothing lost
        expect(summary.counts.targeted).toBe(CONTACTS)
        expect(summary.counts.completed).toBe(CONTACTS)
        expect(perContact.size).toBe(CONTACTS)
        expect([...perContact.values()].filter((n) => n !== 1)).toEqual([])
        // no contact got the same step twice (the sandbox delivery ledger)
        expect([...perContactDeliveries.values()].filter((n) => n !== 1)).toEqual([])
        expect(deliveries.length).toBe(CONTACTS - summary.counts.skipped)
        // no two lock-holding intervals on one contact overlapped
        expect(overlaps).toEqual([])
        // spend within budget, and the campaign's account matches the ledger
        expect(summary.actionsUsed).toBeLessThanOrEqual(CONTACTS)
        expect(summary.actionsUsed).toBe(deliveries.length)
        expect(deliveries.length).toBeLessThanOrEqual(CONTACTS)
        expect(spentUsd).toBeLessThanOrEqual(BUDGET_USD)
        expect(summary.costUsd).toBeCloseTo(spentUsd, 6)
        // a campaign that outran the chaos driver tested little (5,000 contacts saw 2 kills on a faster machine)
        expect(kills, "workers SIGKILLed during the campaign").toBeGreaterThanOrEqual(3)
        expect(Math.max(...failovers)).toBeLessThan(10_000)
        for (const w of workers) yield* w.stop("SIGTERM", 60_000)
      })
      yield* program.pipe(Effect.provide(ctx))
    }),
  600_000
)
})
