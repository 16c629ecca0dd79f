/**
 * The campaign rate watch and the approval thresholds: nothing below the sample size;
 * mostly unanswered calls switch the lead channel; rising opt-outs slow the campaign down
 * and high ones pause it; an email campaign without replies leads with voice; large call
 * volumes and multi-channel blasts need approval, ordinary plans do not.
 */
import { describe, expect, it } from "@effect/vitest"
import * as CampaignHealth from "../../actors/analysis/CampaignHealth.js"
import * as Risk from "../../actors/guardrails/Risk.js"

const stats = (over: Partial<Parameters<typeof CampaignHealth.review>[0]> = {}) => ({
  completed: 100,
  byOutcome: {},
  optOuts: 0,
  replies: 5,
  perChannel: {},
  ...over
})

describe("CampaignHealth", () => {
  it("says nothing on a small sample or healthy rates", () => {
    expect(CampaignHealth.review(stats({ completed: 10, optOuts: 5 }), ["voice", "email"], 512)).toEqual([])
    expect(CampaignHealth.review(stats({ byOutcome: { answered: 60, voicemail: 20 }, perChannel: { voice: { attempted: 100, reached: 80 } } }), ["voice", "email"], 512)).toEqual([])
  })
  it("switches the lead channel when most calls go unanswered", () => {
    const a = CampaignHealth.review(stats({ byOutcome: { voicemail: 45, "no-answer": 30, answered: 25 }, perChannel: { voice: { attempted: 100, reached: 70 } } }), ["voice", "email"], 512)
    expect(a).toEqual([{ kind: "switch-channel", channels: ["email", "voice"], reason: "75% of calls went to voicemail or were not answered; lead with email" }])
  })
  it("slows down on rising opt-outs and pauses on high ones", () => {
    expect(CampaignHealth.review(stats({ optOuts: 3 }), ["email"], 512)).toEqual([{ kind: "slow-down", reason: "opt-out rate 3% is at or above 2%", window: 256 }])
    expect(CampaignHealth.review(stats({ optOuts: 6 }), ["email"], 512)).toEqual([{ kind: "pause", reason: "opt-out rate 6% is at or above 5%" }])
  })
  it("leads with voice after many emails without a reply", () => {
    const a = CampaignHealth.review(stats({ replies: 0, byOutcome: { sent: 100 }, perChannel: { email: { attempted: 100, reached: 100 } } }), ["email", "voice"], 512)
    expect(a.map((x) => x.kind)).toEqual(["switch-channel"])
    expect(a[0]!.channels).toEqual(["voice", "email"])
  })
})

describe("Risk", () => {
  it("asks approval for large call volumes and multi-channel blasts only", () => {
    expect(Risk.assess({ campaignId: "c", contacts: 100, channels: ["voice"], maxTouches: 1 })).toEqual([])
    expect(Risk.assess({ campaignId: "c", contacts: 101, channels: ["voice"], maxTouches: 1 }).map((a) => a.approvalId)).toEqual(["c-calls"])
    expect(Risk.assess({ campaignId: "c", contacts: 1000, channels: ["email", "voice"], maxTouches: 1 })).toEqual([])
    expect(Risk.assess({ campaignId: "c", contacts: 300, channels: ["email", "sms"], maxTouches: 2 }).map((a) => a.action)).toEqual(["multi_channel_blast"])
  })
})
