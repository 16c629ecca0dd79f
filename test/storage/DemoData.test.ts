/**
 * DemoData: deterministic for the same arguments, plausible distributions, valid ids,
 * time zones and contact points, and every contact a valid protocol `ContactSnapshot`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { ContactSnapshot } from "../../protocols/Campaign.js"
import { TenantId } from "../../protocols/Ids.js"
import * as DemoData from "../../storage/DemoData.js"

const tenant = TenantId.make("acme")

describe("DemoData", () => {
  it("is deterministic: same tenant, n and seed give the same contacts; another seed does not", () => {
    const a = DemoData.contacts(tenant, 500, 42)
    expect(DemoData.contacts(tenant, 500, 42)).toEqual(a)
    expect(DemoData.contacts(tenant, 100, 42)).toEqual(a.slice(0, 100))
    expect(DemoData.contacts(tenant, 500, 43)).not.toEqual(a)
    expect(DemoData.contacts(TenantId.make("globex"), 500, 42)).not.toEqual(a)
  })

  it("produces valid snapshots with sequential ids, real time zones and sandbox contact points", () => {
    const all = DemoData.contacts(tenant, 2000, 1)
    expect(all.map((c) => c.id).slice(0, 3)).toEqual(["ct-000001", "ct-000002", "ct-000003"])
    expect(new Set(all.map((c) => c.id)).size).toBe(2000)
    for (const c of all) {
      expect(Schema.is(ContactSnapshot)(c)).toBe(true)
      expect(() => new Intl.DateTimeFormat("en", { timeZone: c.timezone })).not.toThrow()
      expect(DemoData.regions.find((r) => r.name === c.region)?.timezones).toContain(c.timezone)
      expect(c.leadScore).toBeGreaterThanOrEqual(0)
      expect(c.leadScore).toBeLessThanOrEqual(100)
      if (c.email !== null) expect(c.email).toMatch(/^[a-z0-9.]+@[a-z0-9]+\.example$/)
      if (c.phone !== null) expect(c.phone).toMatch(/^\+\d{11,12}$/)
      if (c.phone === null) expect(c.consent.voice || c.consent.sms).toBe(false)
      if (c.email === null) expect(c.consent.email).toBe(false)
    }
  })

  it("has the intended mix: ~30% enterprise, ~5% opted out, some without email or phone", () => {
    const all = DemoData.contacts(tenant, 4000, 9)
    const share = (p: (c: ContactSnapshot) => boolean) => all.filter(p).length / all.length
    expect(share((c) => c.segment === "enterprise")).toBeCloseTo(0.3, 1)
    expect(share((c) => c.optedOut)).toBeGreaterThan(0.03)
    expect(share((c) => c.optedOut)).toBeLessThan(0.07)
    expect(share((c) => c.email === null)).toBeGreaterThan(0.04)
    expect(share((c) => c.phone === null)).toBeGreaterThan(0.1)
    expect(new Set(all.map((c) => c.title))).toContain("VP Sales")
    expect(new Set(all.map((c) => c.region)).size).toBe(DemoData.regions.length)
    expect(new Set(all.map((c) => c.industry)).size).toBe(DemoData.industries.length)
    expect(Math.min(...all.map((c) => c.leadScore))).toBeLessThan(15)
    expect(Math.max(...all.map((c) => c.leadScore))).toBeGreaterThan(85)
  })
})
