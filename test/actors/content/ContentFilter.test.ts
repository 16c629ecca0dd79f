/**
 * The output filter of drafts: false claims and competitor mentions are cut with their
 * reason, other people's contact data is redacted, identity and card numbers block the
 * draft, AI voice and email get the disclosure line when it is missing, SMS does not need
 * it, and a draft with nothing left is blocked.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ContentFilter from "../../../actors/content/ContentFilter.js"

const recipient = { email: "ada@acme.example", phone: "+44 20 0100 1234" }
const disclosure = ContentFilter.defaults.disclosure

describe("ContentFilter", () => {
  it("passes a clean email with its disclosure", () => {
    const r = ContentFilter.apply({ subject: "A call?", body: `Hi Ada, teams like yours automate follow-ups with us. Can we talk?\n\n${disclosure}` }, recipient, "email")
    expect(r).toMatchObject({ verdict: "pass", reasons: [] })
  })

  it("cuts false claims and competitor mentions, keeping the rest and the reasons", () => {
    const r = ContentFilter.apply(
      { subject: "Guaranteed results", body: `Hi Ada. We guarantee a 2x revenue lift. Unlike HubSpot, we are simple. Teams like yours save hours every week with us.\n\n${disclosure}` },
      recipient,
      "email"
    )
    expect(r.verdict).toBe("rewritten")
    expect(r.body).not.toMatch(/guarantee|HubSpot/i)
    expect(r.body).toMatch(/save hours every week/)
    expect(r.subject).toBeNull()
    expect(r.reasons).toEqual(expect.arrayContaining(["false-claim:guarantee", "competitor:HubSpot"]))
  })

  it("redacts other people's emails and phones but keeps the recipient's own", () => {
    const r = ContentFilter.apply(
      { subject: null, body: "Hi Ada, your colleague bob@acme.example (+1 555 0100 9999) suggested we write to ada@acme.example. Reply STOP to opt out." },
      recipient,
      "sms"
    )
    expect(r.verdict).toBe("rewritten")
    expect(r.body).toContain("ada@acme.example")
    expect(r.body).not.toContain("bob@acme.example")
    expect(r.body).not.toContain("0100 9999")
    expect(r.reasons).toEqual(expect.arrayContaining(["pii:other-email", "pii:other-phone"]))
  })

  it("blocks identity and card numbers outright", () => {
    expect(ContentFilter.apply({ subject: null, body: "Your SSN 123-45-6789 is on file, talk soon about savings." }, recipient, "sms")).toMatchObject({ verdict: "blocked", reasons: ["pii:ssn"] })
    expect(ContentFilter.apply({ subject: null, body: "Card 4111 1111 1111 1111 on file for the renewal." }, recipient, "sms").verdict).toBe("blocked")
  })

  it("adds the AI disclosure to voice scripts and emails, not to SMS", () => {
    const voice = ContentFilter.apply({ subject: null, body: "Hello Ada, I'm calling about automating your outreach. Do you have two minutes?" }, recipient, "voice")
    expect(voice.verdict).toBe("rewritten")
    expect(voice.body.startsWith(disclosure)).toBe(true)
    expect(voice.reasons).toEqual(["ai-disclosure:added"])
    const sms = ContentFilter.apply({ subject: null, body: "Hi Ada, quick question about your outreach tooling. Reply STOP to opt out." }, recipient, "sms")
    expect(sms.verdict).toBe("pass")
  })

  it("blocks a draft with nothing left after rewriting", () => {
    const r = ContentFilter.apply({ subject: null, body: `We are the #1 platform in the world. Salesforce is slow.\n\n${disclosure}` }, recipient, "email")
    expect(r.verdict).toBe("blocked")
    expect(r.reasons).toContain("nothing-left-after-rewrite")
  })
})
