/**
 * A campaign whose plan never comes does not wait in `planning` for ever: when the planner
 * fails on its request past the retries (here the planner agent fails while its model is
 * "down", then works again), the campaign pauses with the reason, an event says so, and a
 * person resumes it (which asks for the plan again: the campaign then runs to completion)
 * or cancels it (it completes at once, having engaged no one).
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Agents, CrmApp } from "../../actors/index.js"
import { Campaign, Control, Ids } from "../../protocols/index.js"
import { Agent, Node } from "../../runtime/index.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"

const tenant = Ids.TenantId.make("plan-fail")

/** Whether the planner's model answers; while it does not, every request fails. */
let modelUp = false
class ModelDown extends Error {
  readonly _tag = "ModelDown"
}
const planner = Agent.make({
  ...Agents.planner,
  handle: (m, ctx) => (modelUp ? Agents.planner.handle(m, ctx) : Effect.fail(new ModelDown("the planning model does not answer")))
})
const options = { ...CrmApp.nodeOptions, agents: CrmApp.nodeOptions.agents.map((a) => (a.name === "planner" ? planner : a)) }

const start = (id: string) =>
  Crm.publishCommand(tenant, Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(id),
    name: id,
    goal: "email 20 qualified leads about the new release",
    audience: {},
    channels: ["email"],
    targetCount: 20,
    budget: { maxActions: 1_000, maxCostUsd: 10 }
  })
const paused = (es: ReadonlyArray<Events.StoredEvent>) =>
  Events.ofType(es, "event.campaign-state-changed").find((e) => e.payload.state === "paused")?.payload
const completed = (es: ReadonlyArray<Events.StoredEvent>) => Events.ofType(es, "event.campaign-completed")[0]?.payload

layer(Crm.layer(), { timeout: 90_000, excludeTestServices: true })("a campaign whose planning fails", (it) => {
  it.scoped("pauses with the reason; resumed, it asks for its plan again and completes; cancelled, it completes at once", () =>
    Effect.gen(function* () {
      yield* DemoData.load(tenant, 200, 7)
      yield* Node.start(options)

      yield* start("cmp-resumed")
      yield* start("cmp-cancelled")
      for (const id of ["cmp-resumed", "cmp-cancelled"]) {
        const events = yield* Events.until("the campaign to pause", tenant, id, (es) => paused(es) !== undefined)
        expect(paused(events)).toMatchObject({ reason: "planning-failed:HandlerFailed", by: "runtime" })
        expect(Events.ofType(events, "event.campaign-planned")).toHaveLength(0)
      }

      modelUp = true
      yield* Crm.publishCommand(tenant, Control.ResumeCampaign, { campaignId: Ids.CampaignId.make("cmp-resumed"), by: "user:ops" })
      const resumed = yield* Events.until("the resumed campaign to complete", tenant, "cmp-resumed", (es) => completed(es) !== undefined, 60_000)
      expect(Events.ofType(resumed, "event.campaign-planned")).toHaveLength(1)
      const summary = completed(resumed)!.summary
      expect(summary.counts.targeted).toBeGreaterThan(0)
      expect(summary.counts.completed).toBe(summary.counts.targeted)

      yield* Crm.publishCommand(tenant, Control.CancelCampaign, { campaignId: Ids.CampaignId.make("cmp-cancelled"), reason: "no plan, no campaign", by: "user:ops" })
      const cancelled = yield* Events.until("the cancelled campaign to complete", tenant, "cmp-cancelled", (es) => completed(es) !== undefined)
      expect(completed(cancelled)!.summary.counts).toMatchObject({ targeted: 0, completed: 0, inProgress: 0 })
      expect(Events.ofType(cancelled, "event.campaign-planned")).toHaveLength(0)
    })
  )
})
