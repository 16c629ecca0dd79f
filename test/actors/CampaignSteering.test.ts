/**
 * Steering live campaigns through the real runtime on NATS: the planner's steps stream as
 * events; a high-risk plan waits for approval and runs once approved (or is cancelled when
 * rejected); pause stops new engagements until resume; cancel completes the campaign with
 * only the contacts already in flight; edit changes the target of a running campaign.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Campaign, Control, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"

const tenant = Ids.TenantId.make("steer")
const start = (id: string, goal: string, targetCount: number, channels: Campaign.Channel[] = ["email", "sms"]) =>
  Crm.publishCommand(tenant, Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(id),
    name: id,
    goal,
    audience: {},
    channels: channels as [Campaign.Channel, ...Array<Campaign.Channel>],
    targetCount,
    budget: { maxActions: 10_000, maxCostUsd: 100 }
  })
const completed = (es: ReadonlyArray<Events.StoredEvent>) => es.some((e) => e.type === "event.campaign-completed")

layer(Crm.layer(), { timeout: 90_000, excludeTestServices: true })("campaign steering over NATS", (it) => {
  it.scoped("planner steps stream as events and a plain campaign completes", () =>
    Effect.gen(function* () {
      yield* DemoData.load(tenant, 400, 11)
      const node = yield* Node.start(CrmApp.nodeOptions)
      yield* start("cmp-plain", "email 30 qualified leads about the new release", 30)
      const events = yield* Events.until("campaign completed", tenant, "cmp-plain", completed)
      const steps = Events.ofType(events, "event.planner-step").map((e) => e.payload.step)
      expect(steps.length).toBeGreaterThanOrEqual(2)
      expect(steps.map((s) => s.step)).toEqual(steps.map((_, i) => i))
      expect(steps[steps.length - 1]!.action).toBe("finish")
      const planned = Events.ofType(events, "event.campaign-planned")[0]!.payload.plan
      expect(planned.reasoning.length).toBe(steps.length)
      const summary = Events.ofType(events, "event.campaign-completed")[0]!.payload.summary
      expect(summary.counts.completed).toBe(summary.counts.targeted)
      expect(summary.counts.targeted).toBe(planned.limit)
      expect(node.counters.deadLetters).toBe(0)
    })
  )

  it.scoped("a large call campaign waits for approval, then runs; a rejected one is cancelled", () =>
    Effect.gen(function* () {
      yield* Node.start(CrmApp.nodeOptions)
      yield* start("cmp-calls", "call every lead we have", 150, ["voice", "email"])
      const waiting = yield* Events.until("approval requested", tenant, "cmp-calls", (es) =>
        es.some((e) => e.type === "event.approval-requested")
      )
      const request = Events.ofType(waiting, "event.approval-requested")[0]!.payload
      expect(request.action).toBe("voice_call")
      expect(request.reason).toMatch(/large call volume/)
      // nothing is engaged while it waits
      yield* Effect.sleep("500 millis")
      expect(Events.ofType(yield* Events.of(tenant, "cmp-calls"), "event.contact-progress")).toHaveLength(0)

      yield* Crm.publishCommand(tenant, Control.ApproveAction, { campaignId: Ids.CampaignId.make("cmp-calls"), approvalId: request.approvalId, by: "user:alice" })
      const done = yield* Events.until("approved campaign completed", tenant, "cmp-calls", completed, 60_000)
      expect(Events.ofType(done, "event.approval-decided")[0]!.payload.decision).toBe("approved")
      expect(Events.ofType(done, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(150)

      yield* start("cmp-rejected", "call every lead we have", 150, ["voice"])
      const asked = yield* Events.until("approval requested", tenant, "cmp-rejected", (es) => es.some((e) => e.type === "event.approval-requested"))
      const id = Events.ofType(asked, "event.approval-requested")[0]!.payload.approvalId
      yield* Crm.publishCommand(tenant, Control.RejectAction, { campaignId: Ids.CampaignId.make("cmp-rejected"), approvalId: id, by: "user:bob", reason: "too many calls" })
      const rejected = yield* Events.until("rejected campaign completed", tenant, "cmp-rejected", completed)
      expect(Events.ofType(rejected, "event.campaign-state-changed")[0]!.payload.state).toBe("cancelled")
      expect(Events.ofType(rejected, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(0)
    })
  )

  it.scoped("pause holds a campaign through its approval until resume; edit lowers the target; cancel completes it", () =>
    Effect.gen(function* () {
      yield* Node.start(CrmApp.nodeOptions)
      const id = Ids.CampaignId.make("cmp-steer")
      yield* start("cmp-steer", "call every lead we have", 200, ["voice", "email"])
      const asked = yield* Events.until("approval requested", tenant, "cmp-steer", (es) => es.some((e) => e.type === "event.approval-requested"))
      const approvalId = Events.ofType(asked, "event.approval-requested")[0]!.payload.approvalId
      yield* Crm.publishCommand(tenant, Control.PauseCampaign, { campaignId: id, reason: "review copy", by: "user:carol" })
      yield* Events.until("paused", tenant, "cmp-steer", (es) => es.some((e) => e.type === "event.campaign-state-changed"))
      yield* Crm.publishCommand(tenant, Control.EditCampaign, { campaignId: id, by: "user:carol", targetCount: 40 })
      yield* Events.until("edited", tenant, "cmp-steer", (es) => Events.ofType(es, "event.campaign-state-changed").length === 2)
      yield* Crm.publishCommand(tenant, Control.ApproveAction, { campaignId: id, approvalId, by: "user:carol" })
      yield* Events.until("approval decided", tenant, "cmp-steer", (es) => es.some((e) => e.type === "event.approval-decided"))
      // approved but paused: still nothing engaged
      yield* Effect.sleep("500 millis")
      expect(Events.ofType(yield* Events.of(tenant, "cmp-steer"), "event.contact-progress")).toHaveLength(0)
      yield* Crm.publishCommand(tenant, Control.ResumeCampaign, { campaignId: id, by: "user:carol" })
      const done = yield* Events.until("resumed campaign completed", tenant, "cmp-steer", completed)
      const states = Events.ofType(done, "event.campaign-state-changed").map((e) => e.payload)
      expect(states.map((s) => s.state)).toEqual(["paused", "edited", "resumed"])
      expect(states[0]).toMatchObject({ reason: "review copy", by: "user:carol" })
      const summary = Events.ofType(done, "event.campaign-completed")[0]!.payload.summary
      expect(summary.counts.targeted).toBe(40)
      expect(summary.counts.completed).toBe(40)

      const cid = Ids.CampaignId.make("cmp-cancel")
      yield* start("cmp-cancel", "call every lead we have", 200, ["voice"])
      yield* Events.until("approval requested", tenant, "cmp-cancel", (es) => es.some((e) => e.type === "event.approval-requested"))
      yield* Crm.publishCommand(tenant, Control.CancelCampaign, { campaignId: cid, reason: "wrong list", by: "user:dan" })
      const cancelled = yield* Events.until("cancelled campaign completed", tenant, "cmp-cancel", completed)
      expect(Events.ofType(cancelled, "event.campaign-state-changed")[0]!.payload).toMatchObject({ state: "cancelled", reason: "wrong list" })
      expect(Events.ofType(cancelled, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(0)
    })
  )
})
