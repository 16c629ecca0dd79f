/**
 * Quiet hours in the contact's own time zone: the window is local wall-clock time in any
 * IANA zone, across the spring-forward and fall-back days of DST (US and EU switch on
 * different dates), in zones without DST, in half-hour zones, and for windows that wrap
 * midnight; the dispatch check defers to the next opening and skips opted-out,
 * do-not-contact and unconsented contacts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as DispatchPolicy from "../../../actors/guardrails/DispatchPolicy.js"
import * as QuietHours from "../../../actors/guardrails/QuietHours.js"
import { ContactId } from "../../../protocols/Ids.js"

const at = (iso: string) => Date.parse(iso)
const localHm = (t: number, zone: string) => {
  const l = QuietHours.local(t, zone)
  return `${String(l.hour).padStart(2, "0")}:${String(l.minute).padStart(2, "0")}`
}

describe("QuietHours", () => {
  it("reads local time in named zones", () => {
    const t = at("2026-07-01T12:00:00Z")
    expect(localHm(t, "America/New_York")).toBe("08:00") // EDT, UTC-4
    expect(localHm(t, "Europe/Berlin")).toBe("14:00") // CEST, UTC+2
    expect(localHm(t, "Asia/Kolkata")).toBe("17:30") // UTC+5:30, no DST
    expect(localHm(t, "Australia/Sydney")).toBe("22:00") // AEST in July (southern winter)
  })

  it("allows 08:00–21:00 local, start inclusive, end exclusive", () => {
    expect(QuietHours.isAllowed(at("2026-07-01T12:00:00Z"), "America/New_York")).toBe(true) // 08:00
    expect(QuietHours.isAllowed(at("2026-07-01T11:59:59Z"), "America/New_York")).toBe(false) // 07:59:59
    expect(QuietHours.isAllowed(at("2026-07-01T19:00:00Z"), "Europe/Berlin")).toBe(false) // 21:00
    expect(QuietHours.isAllowed(at("2026-07-01T18:59:00Z"), "Europe/Berlin")).toBe(true) // 20:59
  })

  it("opens at 08:00 local on the US spring-forward day (UTC-5 before, UTC-4 after)", () => {
    // 2026-03-08 02:00 EST → 03:00 EDT; at 01:00 EST the next opening is 08:00 EDT = 12:00Z
    const next = QuietHours.nextAllowed(at("2026-03-08T06:00:00Z"), "America/New_York")
    expect(new Date(next).toISOString()).toBe("2026-03-08T12:00:00.000Z")
    expect(localHm(next, "America/New_York")).toBe("08:00")
  })

  it("opens at 08:00 local on the EU fall-back day, which has 25 hours", () => {
    // 2026-10-25 03:00 CEST → 02:00 CET; from 22:00 CEST the day before, 08:00 CET = 07:00Z
    const next = QuietHours.nextAllowed(at("2026-10-24T20:00:00Z"), "Europe/Berlin")
    expect(new Date(next).toISOString()).toBe("2026-10-25T07:00:00.000Z")
  })

  it("US and EU switch on different dates: same UTC instant, different openings", () => {
    // 2026-03-10: New York already on EDT, London still on GMT
    const t = at("2026-03-10T04:00:00Z")
    expect(new Date(QuietHours.nextAllowed(t, "America/New_York")).toISOString()).toBe("2026-03-10T12:00:00.000Z")
    expect(new Date(QuietHours.nextAllowed(t, "Europe/London")).toISOString()).toBe("2026-03-10T08:00:00.000Z")
  })

  it("a window starting in the spring-forward gap opens right after it", () => {
    const w = { start: "02:30", end: "05:00" }
    const next = QuietHours.nextAllowed(at("2026-03-08T05:00:00Z"), "America/New_York", w) // 00:00 EST
    expect(localHm(next, "America/New_York")).toBe("03:30")
    expect(QuietHours.isAllowed(next, "America/New_York", w)).toBe(true)
  })

  it("half-hour zones and windows wrapping midnight", () => {
    const t = at("2026-01-15T01:00:00Z") // 06:30 in Kolkata
    expect(new Date(QuietHours.nextAllowed(t, "Asia/Kolkata")).toISOString()).toBe("2026-01-15T02:30:00.000Z")
    const night = { start: "22:00", end: "06:00" }
    expect(QuietHours.isAllowed(at("2026-01-15T23:30:00Z"), "UTC", night)).toBe(true)
    expect(QuietHours.isAllowed(at("2026-01-15T05:59:00Z"), "UTC", night)).toBe(true)
    expect(QuietHours.isAllowed(at("2026-01-15T12:00:00Z"), "UTC", night)).toBe(false)
    expect(new Date(QuietHours.nextAllowed(at("2026-01-15T12:00:00Z"), "UTC", night)).toISOString()).toBe("2026-01-15T22:00:00.000Z")
  })

  it("an unknown zone is read as UTC", () => {
    expect(QuietHours.isValidZone("Mars/Olympus")).toBe(false)
    expect(QuietHours.isAllowed(at("2026-01-15T09:00:00Z"), "Mars/Olympus")).toBe(true)
  })
})

describe("DispatchPolicy.check", () => {
  const contact = {
    id: ContactId.make("c1"),
    name: "A B",
    email: "a@b.example",
    phone: "+15550100001",
    company: "B",
    title: "CEO",
    industry: "SaaS",
    segment: "smb" as const,
    region: "North America",
    timezone: "America/Los_Angeles",
    leadScore: 50,
    optedOut: false,
    consent: { voice: false, email: true, sms: true }
  }
  const noon = at("2026-07-01T19:00:00Z") // 12:00 in Los Angeles
  const night = at("2026-07-01T07:00:00Z") // 00:00 in Los Angeles

  it("goes on the first consented channel in the window", () => {
    expect(DispatchPolicy.check(DispatchPolicy.defaults, contact, false, ["voice", "sms"], noon)).toEqual({ _tag: "Go", channel: "sms" })
  })
  it("defers to the contact's own 08:00 at night", () => {
    const v = DispatchPolicy.check(DispatchPolicy.defaults, contact, false, ["email"], night)
    expect(v).toMatchObject({ _tag: "Defer", channel: "email", reason: "quiet-hours:America/Los_Angeles" })
    expect(new Date((v as { until: number }).until).toISOString()).toBe("2026-07-01T15:00:00.000Z")
  })
  it("skips opted-out, do-not-contact and unconsented contacts", () => {
    expect(DispatchPolicy.check(DispatchPolicy.defaults, contact, true, ["email"], noon)).toEqual({ _tag: "Skip", reason: "opted-out" })
    expect(DispatchPolicy.check({ ...DispatchPolicy.defaults, doNotContact: new Set(["+15550100001"]) }, contact, false, ["email"], noon)).toEqual({
      _tag: "Skip",
      reason: "do-not-contact"
    })
    expect(DispatchPolicy.check(DispatchPolicy.defaults, contact, false, ["voice"], noon)).toEqual({ _tag: "Skip", reason: "no-consented-channel" })
  })
})
