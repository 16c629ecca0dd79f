/**
 * The planner's ReAct loop on 24 campaign goals with the offline model, over real contact
 * records (Postgres, 600 demo contacts): every plan finishes within the step bound with
 * contiguous recorded steps; its audience is never wider than the campaign's filter; its
 * limit and channels stay within what was asked; the contacts it targets match the filter,
 * and after the dispatch guardrails only consenting, not-opted-out contacts are contacted;
 * high-volume calls, blasts and destructive actions wait for approval; WhatsApp (not an
 * enabled channel) is refused; research actions run when the goal asks for them.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as DispatchPolicy from "../../../actors/guardrails/DispatchPolicy.js"
import * as Model from "../../../actors/Model.js"
import * as Knowledge from "../../../actors/planner/Knowledge.js"
import * as Planner from "../../../actors/planner/Planner.js"
import type { Campaign, Planner as PlannerProtocol } from "../../../protocols/index.js"
import * as Cost from "../../../protocols/Cost.js"
import { CampaignId, TenantId } from "../../../protocols/Ids.js"
import * as ActionLedger from "../../../storage/ActionLedger.js"
import * as CampaignRepo from "../../../storage/CampaignRepo.js"
import * as ContactRepo from "../../../storage/ContactRepo.js"
import * as DemoData from "../../../storage/DemoData.js"
import * as Records from "../../../storage/Records.js"
import { type Scenario, scenarios } from "../../fixtures/PlanScenarios.js"
import * as Postgres from "../../fixtures/Postgres.js"

const tenant = TenantId.make("plans")

const within = <A>(asked: ReadonlyArray<A> | undefined, got: ReadonlyArray<A> | undefined) =>
  asked === undefined || (got !== undefined && got.every((x) => asked.includes(x)))

/** Whether a contact matches a filter (the same rules as the repository's SQL). */
const matches = (f: Campaign.AudienceFilter, c: Campaign.ContactSnapshot) =>
  (f.segments === undefined || f.segments.includes(c.segment)) &&
  (f.industries === undefined || f.industries.includes(c.industry)) &&
  (f.regions === undefined || f.regions.includes(c.region)) &&
  (f.titleKeywords === undefined || f.titleKeywords.some((k) => c.title.toLowerCase().includes(k.toLowerCase()))) &&
  (f.minLeadScore === undefined || c.leadScore >= f.minLeadScore)

const Env = Layer.mergeAll(ContactRepo.layer, CampaignRepo.layer, Records.layer, ActionLedger.layer).pipe(Layer.provideMerge(Postgres.layerFresh))
const Planning = Layer.mergeAll(Knowledge.layerOffline, Model.layerOffline).pipe(Layer.provideMerge(Env))

/** Runs the loop to its plan, as the planner agent does one message at a time. */
const plan = (campaignId: string, s: Scenario) =>
  Effect.gen(function* () {
    const request = {
      campaignId: CampaignId.make(campaignId),
      goal: s.goal,
      audience: s.audience ?? {},
      channels: s.channels,
      targetCount: s.target
    }
    const steps: Array<PlannerProtocol.PlanStep> = []
    let cost = Cost.zero
    for (let i = 0; i < Planner.MAX_PLAN_STEPS + 1; i++) {
      const r = yield* Planner.step(tenant, request, steps, cost)
      steps.push(r.step)
      cost = r.cost
      if (r.plan !== null) return { plan: r.plan, steps, cost }
    }
    return yield* Effect.dieMessage(`no plan after ${steps.length} steps for "${s.goal}"`)
  })

layer(Planning, { timeout: 60_000 })("planner scenarios (offline model)", (it) => {
  it.effect(`${scenarios.length} campaign goals give bounded plans within filters and guardrails`, () =>
    Effect.gen(function* () {
      expect(scenarios.length).toBeGreaterThanOrEqual(20)
      yield* DemoData.load(tenant, 600, 5)
      const repo = yield* ContactRepo.ContactRepo
      for (const [n, s] of scenarios.entries()) {
        const label = `scenario ${n + 1} "${s.goal}"`
        const { plan: p, steps, cost } = yield* plan(`plan-${n}`, s)
        // bounded, recorded, finished
        expect(steps.length, label).toBeLessThanOrEqual(Planner.MAX_PLAN_STEPS)
        expect(steps.map((x) => x.step), label).toEqual(steps.map((_, i) => i))
        expect(steps[steps.length - 1]!.action, label).toBe("finish")
        expect(p.reasoning.length, label).toBe(steps.length)
        expect(cost.calls, label).toBe(steps.length)
        expect(cost.usd, label).toBe(0)
        // never wider than asked
        const asked = s.audience ?? {}
        expect(within(asked.segments, p.audience.segments), `${label}: segments`).toBe(true)
        expect(within(asked.industries, p.audience.industries), `${label}: industries`).toBe(true)
        expect(within(asked.regions, p.audience.regions), `${label}: regions`).toBe(true)
        if (asked.titleKeywords) expect(p.audience.titleKeywords, label).toEqual(asked.titleKeywords)
        expect(p.audience.minLeadScore ?? 0, label).toBeGreaterThanOrEqual(asked.minLeadScore ?? 0)
        expect(p.limit, label).toBeLessThanOrEqual(s.target)
        expect(p.limit, label).toBe(Math.min(s.target, p.matching ?? -1))
        expect(p.channelSequence.every((c) => s.channels.includes(c)), `${label}: channels`).toBe(true)
        expect(new Set(p.channelSequence).size, label).toBe(p.channelSequence.length)
        // the targets: matching the filter; after guardrails only reachable, consenting contacts
        const targets = (yield* repo.window(tenant, p.audience, null, p.limit)).contacts
        expect(targets.length, label).toBe(p.limit)
        for (const c of targets) {
          expect(matches(asked, c), `${label}: ${c.id} outside the filter`).toBe(true)
          const v = DispatchPolicy.check(DispatchPolicy.anyTime, c, false, p.channelSequence, Date.now())
          if (v._tag === "Go") {
            expect(c.optedOut, label).toBe(false)
            expect(v.channel === "email" ? c.consent.email && c.email !== null : c.consent[v.channel] && c.phone !== null, `${label}: consent`).toBe(true)
          } else {
            expect(["opted-out", "no-consented-channel"], label).toContain(v._tag === "Skip" ? v.reason : "")
          }
        }
        // what the goal asked for
        const e = s.expect ?? {}
        if (e.first) expect(p.channelSequence[0], label).toBe(e.first)
        for (const a of e.actions ?? []) expect(steps.map((x) => x.action), label).toContain(a)
        if (e.approval) {
          expect(p.approvals?.some((a) => e.approval!.test(a.reason) || e.approval!.test(a.action)), `${label}: approval`).toBe(true)
        }
        if (e.noApproval) expect(p.approvals ?? [], label).toEqual([])
        if (e.refused) expect(steps.find((x) => x.action === e.refused)?.status, label).toBe("refused")
        if (e.touches) expect(p.sequence?.maxTouches, label).toBe(e.touches)
        for (const x of steps) {
          if (x.action === "pause_campaign" || x.action === "escalate") expect(x.status, label).toBe("needs-confirmation")
        }
      }
    })
  )
})
