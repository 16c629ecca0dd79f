/**
 * Overlapping campaigns and the contact-lock policy, through the real runtime on NATS.
 * Four campaigns target the same 24 contacts while the first one's contacts wait for their
 * quiet-hours window to open:
 * - A (skip, priority 0) engages everyone first; its contacts wait for the window.
 * - B (skip) finds every contact busy and skips it, naming A.
 * - C (wait) queues behind A in each contact actor's state.
 * - D (preempt, priority 5) takes the contacts from A, which delivered nothing yet.
 * When the window opens, D delivers, then C's waiting engagements run. Asserted from the
 * delivery ledger and from a watch of the lock bucket: no contact got two deliveries of one
 * campaign, and no two lock-holding intervals on one contact overlap.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as DispatchPolicy from "../../actors/guardrails/DispatchPolicy.js"
import * as QuietHours from "../../actors/guardrails/QuietHours.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { NatsConfig } from "../../nats/NatsConfig.js"
import { buckets } from "../../nats/Topology.js"
import { Campaign, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { snapshot } from "../fixtures/Contacts.js"

const policy = Ref.unsafeMake<DispatchPolicy.PolicySettings>(DispatchPolicy.anyTime)
const N = 24
const tenant = Ids.TenantId.make("overlap")

const contact = (i: number) =>
  snapshot(`o-${String(i).padStart(3, "0")}`, {
    name: `Overlap ${i}`,
    email: `o${i}@overlap.example`,
    phone: null,
    company: "Overlap Ltd",
    title: "Head of Sales",
    segment: "smb",
    timezone: "UTC",
    leadScore: 40 + i,
    consent: { voice: false, email: true, sms: false }
  })

const start = (id: string, lockPolicy: Campaign.LockPolicy) =>
  Crm.publishCommand(tenant, Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(id),
    name: id,
    goal: "email our leads",
    audience: {},
    channels: ["email"],
    targetCount: N,
    budget: { maxActions: 100, maxCostUsd: 10 },
    lockPolicy
  })
const completed = (es: ReadonlyArray<Events.StoredEvent>) => es.some((e) => e.type === "event.campaign-completed")
const terminal = (es: ReadonlyArray<Events.StoredEvent>) =>
  es.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "completed").map((e) => e.payload)
const hhmmss = (seconds: number) => {
  const s = ((Math.floor(seconds) % 86400) + 86400) % 86400
  return [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, "0")).join(":")
}

layer(Crm.layer({}, { policy: DispatchPolicy.layerRef(policy) }), { timeout: 120_000, excludeTestServices: true })("contact-lock policy over NATS", (it) => {
  it.scoped("overlapping campaigns: skip names the holder, wait queues, preempt takes over by priority; lock intervals never overlap", () =>
    Effect.gen(function* () {
      // every lock operation, in order, from the bucket itself
      const { kvm } = yield* NatsClient
      const cfg = yield* NatsConfig
      const locks = yield* Effect.promise(() => kvm.open(buckets(cfg.prefix).locks))
      const ops: Array<{ key: string; op: string; holder: string | null; revision: number }> = []
      const watch = yield* Effect.acquireRelease(
        Effect.promise(() => locks.watch({ key: ">" })),
        (w) => Effect.sync(() => w.stop())
      )
      yield* Effect.forkScoped(
        Effect.promise(async () => {
          for await (const e of watch) {
            ops.push({
              key: e.key,
              op: e.operation,
              holder: e.operation === "PUT" ? (JSON.parse(new TextDecoder().decode(e.value)) as { h: string }).h : null,
              revision: e.revision
            })
          }
        })
      )

      // the email window opens 14 s from now (UTC contacts): everything engaged before waits
      const now = Date.now()
      const utc = QuietHours.local(now, "UTC")
      const opens = utc.hour * 3600 + utc.minute * 60 + utc.second + 14
      yield* Ref.set(policy, { ...DispatchPolicy.anyTime, quietHours: { voice: null, sms: null, email: { start: hhmmss(opens), end: hhmmss(opens + 10 * 3600) } } })
      yield* (yield* ContactRepo).insertMany(tenant, Array.from({ length: N }, (_, i) => contact(i)))
      yield* Node.start(CrmApp.nodeOptions)

      yield* start("cmp-a", { onConflict: "skip", priority: 0, maxWaitMs: 60_000 })
      yield* Events.until("A's contacts deferred", tenant, "cmp-a", (es) => Events.ofType(es, "event.contact-deferred").length === N)
      yield* start("cmp-b", { onConflict: "skip", priority: 0, maxWaitMs: 60_000 })
      const b = terminal(yield* Events.until("B completed", tenant, "cmp-b", completed))
      yield* start("cmp-c", { onConflict: "wait", priority: 1, maxWaitMs: 120_000 })
      yield* Events.until("C's contacts waiting", tenant, "cmp-c", (es) =>
        es.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "waiting").length === N
      )
      yield* start("cmp-d", { onConflict: "preempt", priority: 5, maxWaitMs: 60_000 })

      const [a, c, d] = [
        terminal(yield* Events.until("A completed", tenant, "cmp-a", completed, 60_000)),
        terminal(yield* Events.until("C completed", tenant, "cmp-c", completed, 60_000)),
        terminal(yield* Events.until("D completed", tenant, "cmp-d", completed, 60_000))
      ]
      yield* Ref.set(policy, DispatchPolicy.anyTime)

      // skip: every contact skipped, naming the campaign that had it
      expect(b).toHaveLength(N)
      expect(new Set(b.map((p) => `${p.status}/${p.reason}`))).toEqual(new Set(["skipped/busy:cmp-a"]))
      // preempt: A (priority 0, nothing delivered yet) gave every contact up to D (priority 5)
      expect(a).toHaveLength(N)
      expect(new Set(a.map((p) => `${p.status}/${p.reason}`))).toEqual(new Set(["skipped/preempted-by:cmp-d"]))
      // (the sandbox bounces a few addresses: delivered to, not necessarily reached)
      expect(d.filter((p) => p.status === "reached" || p.reason === "not-reached:bounced")).toHaveLength(N)
      // wait: C waited for each contact and then worked it
      expect(c.filter((p) => p.status === "reached" || p.reason === "not-reached:bounced")).toHaveLength(N)

      // from the delivery ledger: each contact got D's email, then C's, one each
      const ledger = yield* DeliveryLedger
      const byCampaign = (id: string) => ledger.byCampaign(tenant, Ids.CampaignId.make(id))
      const [da, db, dc, dd] = [yield* byCampaign("cmp-a"), yield* byCampaign("cmp-b"), yield* byCampaign("cmp-c"), yield* byCampaign("cmp-d")]
      expect(da).toHaveLength(0)
      expect(db).toHaveLength(0)
      expect(new Set(dc.map((x) => x.contactId)).size).toBe(N)
      expect(new Set(dd.map((x) => x.contactId)).size).toBe(N)
      expect(dc).toHaveLength(N)
      expect(dd).toHaveLength(N)
      for (const x of dc) {
        const first = dd.find((y) => y.contactId === x.contactId)!
        expect(x.createdAt.getTime()).toBeGreaterThanOrEqual(first.createdAt.getTime())
      }

      // from the lock bucket: per contact, a new holder only after the previous one let go
      yield* Effect.sleep("500 millis")
      const overlaps: Array<string> = []
      const holders = new Map<string, string | null>()
      for (const o of ops) {
        const cur = holders.get(o.key) ?? null
        if (o.op === "PUT" && cur !== null && cur !== o.holder) overlaps.push(`${o.key}: ${o.holder} while ${cur} held it (rev ${o.revision})`)
        holders.set(o.key, o.op === "PUT" ? o.holder : null)
      }
      expect(overlaps).toEqual([])
      const acquiredBy = new Set(ops.filter((o) => o.op === "PUT").map((o) => o.holder))
      expect(acquiredBy).toEqual(new Set(["campaign:cmp-c", "campaign:cmp-d"]))
      expect([...holders.values()].filter((h) => h !== null)).toEqual([])
    }),
    120_000
  )
})
