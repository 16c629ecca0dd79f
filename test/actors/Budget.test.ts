/**
 * Campaign budgets through the real runtime on NATS: every contact's worst case is
 * reserved before it is engaged and settled after, so spend never passes the limit; when the
 * next contact no longer fits the campaign pauses and says which budget ran out and by how
 * much; raising the budget and resuming finishes it. Spend is checked against the delivery
 * ledger and the channel price table, not against the campaign's own figures alone.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as ChannelPrices from "../../actors/channels/ChannelPrices.js"
import { Campaign, Control, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import { TenantBudget } from "../../actors/TenantBudget.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { snapshot } from "../fixtures/Contacts.js"

const N = 40
const tenant = Ids.TenantId.make("budget")
const campaignId = Ids.CampaignId.make("cmp-budget")

const contact = (i: number) =>
  snapshot(`b-${String(i).padStart(3, "0")}`, {
    name: `Budget ${i}`,
    email: `b${i}@budget.example`,
    phone: null,
    company: "Thrift Inc",
    title: "CFO",
    industry: "Retail",
    segment: "smb",
    timezone: "UTC",
    leadScore: 30 + i,
    consent: { voice: false, email: true, sms: false }
  })

layer(Crm.layer(), { timeout: 120_000, excludeTestServices: true })("campaign budget over NATS", (it) => {
  it.scoped("reserve before, settle after: the campaign pauses when the next contact would not fit, says why, and resumes after an edit", () =>
    Effect.gen(function* () {
      yield* (yield* ContactRepo).insertMany(tenant, Array.from({ length: N }, (_, i) => contact(i)))
      yield* Node.start(CrmApp.nodeOptions)
      // per contact: one email ($0.001) and model calls ($0.02) reserved; spent: the email (offline model costs nothing)
      const perContact = ChannelPrices.reserveUsd("email") + ChannelPrices.LLM_PER_TOUCH_USD
      const maxCostUsd = 0.03
      yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
        campaignId,
        name: "thrifty",
        goal: "email our leads",
        audience: {},
        channels: ["email"],
        targetCount: N,
        budget: { maxActions: 1000, maxCostUsd }
      })
      const exhausted = yield* Events.until("budget exhausted", tenant, campaignId, (es) => es.some((e) => e.type === "event.budget-exhausted"))
      const event = exhausted.find((e) => e.type === "event.budget-exhausted")!.payload
      // contacts in flight settle after the pause: wait until none is left, then read the ledger
      const paused = yield* Events.until("paused, nothing in flight", tenant, campaignId, (es) =>
        es.some((e) => e.type === "event.campaign-state-changed" && e.payload.state === "paused") &&
        Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "completed").length ===
          Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "engaged").length
      )
      const ledger = yield* DeliveryLedger
      const before = yield* ledger.byCampaign(tenant, campaignId)
      const spentBefore = before.length * ChannelPrices.prices.email.perMessage

      expect(event).toMatchObject({ campaignId, scope: "campaign", budget: "cost", limit: maxCostUsd })
      expect(event.requested).toBeCloseTo(perContact, 9)
      // the next contact's worst case did not fit what was used
      expect(event.used + event.requested).toBeGreaterThan(maxCostUsd)
      expect(paused.find((e) => e.type === "event.campaign-state-changed" && e.payload.state === "paused")!.payload.reason).toBe("budget-exhausted:cost")
      // spend never passed the limit, and it stopped because it had to: one more would not fit
      expect(spentBefore).toBeLessThanOrEqual(maxCostUsd)
      expect(spentBefore + perContact).toBeGreaterThan(maxCostUsd)
      expect(before.length).toBeGreaterThan(0)
      expect(before.length).toBeLessThan(N)
      // nothing more happens while paused
      yield* Effect.sleep("1 second")
      expect((yield* ledger.byCampaign(tenant, campaignId)).length).toBe(before.length)

      // more money, resume: the rest of the audience is worked
      yield* Crm.publishCommand(tenant, Control.EditCampaign, { campaignId, by: "user:finance", budget: { maxActions: 1000, maxCostUsd: 1 } })
      yield* Crm.publishCommand(tenant, Control.ResumeCampaign, { campaignId, by: "user:finance" })
      const done = yield* Events.until("campaign completed", tenant, campaignId, (es) => es.some((e) => e.type === "event.campaign-completed"))
      const summary = done.find((e) => e.type === "event.campaign-completed")!.payload.summary
      const all = yield* ledger.byCampaign(tenant, campaignId)
      expect(summary.counts.completed).toBe(N)
      expect(all).toHaveLength(N)
      expect(summary.actionsUsed).toBe(N)
      expect(summary.costUsd).toBeCloseTo(N * ChannelPrices.prices.email.perMessage, 9)
      expect(summary.costUsd).toBeLessThanOrEqual(1)
    }),
    120_000
  )

  it.scoped("a tenant budget bounds all its campaigns: grants are taken compare-and-set, the second campaign pauses naming the tenant budget", () =>
    Effect.gen(function* () {
      const t = Ids.TenantId.make("tenant-budget")
      yield* (yield* ContactRepo).insertMany(t, Array.from({ length: 30 }, (_, i) => contact(i)))
      const budgets = yield* TenantBudget
      yield* budgets.setLimit(t, { actions: 1000, usd: 0.06 })
      yield* Node.start(CrmApp.nodeOptions)
      const startIn = (id: string) =>
        Crm.publishCommand(t, Campaign.StartCampaign, {
          campaignId: Ids.CampaignId.make(id),
          name: id,
          goal: "email our leads",
          audience: {},
          channels: ["email"],
          targetCount: 30,
          budget: { maxActions: 1000, maxCostUsd: 1 }
        })
      // the first campaign fits the tenant's budget and closes its grant down to what it spent
      yield* startIn("cmp-x")
      yield* Events.until("X completed", t, "cmp-x", (es) => es.some((e) => e.type === "event.campaign-completed"))
      const afterX = yield* budgets.get(t)
      expect(afterX!.grants["cmp-x"]).toMatchObject({ closed: true, actions: 30 })
      expect(afterX!.grants["cmp-x"]!.usd).toBeCloseTo(0.03, 9)
      // the second gets what is left, and pauses when its next contact would not fit
      yield* startIn("cmp-y")
      const y = yield* Events.until("Y exhausted the tenant budget", t, "cmp-y", (es) =>
        es.some((e) => e.type === "event.campaign-state-changed" && e.payload.state === "paused") &&
        Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "completed").length ===
          Events.ofType(es, "event.contact-progress").filter((e) => e.payload.phase === "engaged").length
      )
      const event = y.find((e) => e.type === "event.budget-exhausted")!.payload
      expect(event).toMatchObject({ scope: "tenant", budget: "cost", limit: 0.06 })
      const ledger = yield* DeliveryLedger
      const spentX = (yield* ledger.byCampaign(t, Ids.CampaignId.make("cmp-x"))).length * ChannelPrices.prices.email.perMessage
      const spentY = (yield* ledger.byCampaign(t, Ids.CampaignId.make("cmp-y"))).length * ChannelPrices.prices.email.perMessage
      // the tenant never spent past its limit, and Y stopped because its next contact would not fit
      expect(spentX + spentY).toBeLessThanOrEqual(0.06)
      expect(spentY).toBeGreaterThan(0)
      expect(spentX + spentY + ChannelPrices.reserveUsd("email") + ChannelPrices.LLM_PER_TOUCH_USD).toBeGreaterThan(0.06)
      const grants = (yield* budgets.get(t))!.grants
      expect(grants["cmp-x"]!.usd + grants["cmp-y"]!.usd).toBeLessThanOrEqual(0.06 + 1e-9)
    }),
    120_000
  )
})
