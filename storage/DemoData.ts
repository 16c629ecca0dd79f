/**
 * Deterministic demo contacts: the same (tenant, n, seed) always gives the same contacts,
 * from a seeded PRNG (never `Math.random`). Emails use the reserved `.example` domain and
 * phones the fictional 555-01xx style ranges, so nothing generated can reach a real person.
 */
import { Effect } from "effect"
import type { ContactSnapshot, Segment } from "../protocols/Campaign.js"
import { ContactId, type TenantId } from "../protocols/Ids.js"
import { ContactRepo } from "./ContactRepo.js"
import type { StorageError } from "./Errors.js"

/** Regions, each with the IANA time zones its contacts live in and a phone prefix. */
export const regions: ReadonlyArray<{ readonly name: string; readonly timezones: ReadonlyArray<string>; readonly dial: string }> = [
  { name: "North America", dial: "+1555", timezones: ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Toronto"] },
  { name: "Europe", dial: "+4420", timezones: ["Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Amsterdam", "Europe/Stockholm"] },
  { name: "APAC", dial: "+6129", timezones: ["Asia/Tokyo", "Asia/Singapore", "Australia/Sydney", "Asia/Kolkata", "Asia/Seoul"] },
  { name: "LATAM", dial: "+5511", timezones: ["America/Sao_Paulo", "America/Mexico_City", "America/Bogota", "America/Argentina/Buenos_Aires"] }
]

/** Industries, each with the company-name suffixes that fit it. */
export const industries: ReadonlyArray<{ readonly name: string; readonly suffixes: ReadonlyArray<string> }> = [
  { name: "SaaS", suffixes: ["Software", "Cloud", "Labs"] },
  { name: "Healthcare", suffixes: ["Health", "Medical", "Care"] },
  { name: "Financial Services", suffixes: ["Capital", "Financial", "Bank"] },
  { name: "Manufacturing", suffixes: ["Industries", "Manufacturing", "Works"] },
  { name: "Retail", suffixes: ["Retail", "Stores", "Goods"] },
  { name: "Logistics", suffixes: ["Logistics", "Freight", "Shipping"] },
  { name: "Energy", suffixes: ["Energy", "Power", "Renewables"] },
  { name: "Education", suffixes: ["Learning", "Academy", "Education"] },
  { name: "Telecommunications", suffixes: ["Networks", "Telecom", "Communications"] }
]

/** Job titles, with how much each adds to the lead score (decision makers score higher). */
export const titles: ReadonlyArray<{ readonly title: string; readonly weight: number }> = [
  { title: "CEO", weight: 15 }, { title: "CTO", weight: 15 }, { title: "CFO", weight: 10 },
  { title: "COO", weight: 12 }, { title: "Chief Revenue Officer", weight: 15 }, { title: "Founder", weight: 12 },
  { title: "VP Sales", weight: 12 }, { title: "VP Engineering", weight: 8 }, { title: "VP Marketing", weight: 10 },
  { title: "Head of Operations", weight: 8 }, { title: "Head of Customer Success", weight: 6 },
  { title: "Head of Engineering", weight: 6 }, { title: "Director of Marketing", weight: 6 },
  { title: "Director of IT", weight: 5 }, { title: "Sales Operations Manager", weight: 2 },
  { title: "Procurement Manager", weight: 4 }, { title: "IT Manager", weight: 1 }, { title: "Product Manager", weight: 0 }
]

const firstNames = [
  "Ava", "Liam", "Sofia", "Noah", "Mia", "Lucas", "Amara", "Mateo", "Yuki", "Ethan", "Priya", "Oliver",
  "Chloe", "Kenji", "Fatima", "Leon", "Isabel", "Arjun", "Hannah", "Diego", "Elena", "Tomás", "Grace",
  "Wei", "Nadia", "Samuel", "Ingrid", "Omar", "Lena", "Hiroshi", "Camila", "Jonas"
]
const lastNames = [
  "Smith", "García", "Müller", "Tanaka", "Okafor", "Rossi", "Kim", "Johansson", "Patel", "Dubois",
  "Silva", "Novak", "Chen", "Kowalski", "Brown", "Fernández", "Schmidt", "Sato", "Nguyen", "Andersen",
  "Martin", "Costa", "Walker", "Ibrahim", "Larsen", "Moreau", "Park", "Haddad", "Fischer", "Rahman"
]
const companyStems = [
  "Blue", "Nova", "Summit", "Apex", "Iron", "Silver", "Cedar", "Harbor", "Quantum", "Vertex", "Atlas",
  "Pioneer", "Lumen", "Cobalt", "Orbit", "Northwind", "Granite", "Meridian", "Beacon", "Redwood"
]

/** A seeded PRNG (mulberry32): uniform floats in [0, 1). */
const prng = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a of a string, to mix the tenant into the seed. */
const hash = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

const slug = (s: string): string =>
  s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "")

/** `ct-000123`: the id of the 123rd demo contact. */
export const contactId = (index: number): ContactId => ContactId.make(`ct-${String(index).padStart(6, "0")}`)

/**
 * `n` demo contacts for `tenant` (ids `ct-000001`…), the same for the same arguments.
 * About 30% enterprise, 5% opted out, 8% without email, 15% without phone.
 */
export const contacts = (tenant: TenantId, n: number, seed = 1): ReadonlyArray<ContactSnapshot> => {
  const random = prng(hash(tenant) ^ Math.imul(seed | 0, 0x9e3779b1))
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
  const chance = (p: number): boolean => random() < p
  const out: Array<ContactSnapshot> = []
  for (let i = 1; i <= n; i++) {
    const first = pick(firstNames)
    const last = pick(lastNames)
    const industry = pick(industries)
    const company = `${pick(companyStems)} ${pick(industry.suffixes)}`
    const role = pick(titles)
    const region = pick(regions)
    const roll = random()
    const segment: Segment = roll < 0.3 ? "enterprise" : roll < 0.7 ? "mid-market" : "smb"
    // mean of two uniforms: a hump around the middle, plus seniority and company size
    const base = ((random() + random()) / 2) * 85
    const leadScore = Math.min(100, Math.round(base + role.weight * random() + (segment === "enterprise" ? 5 : 0)))
    const email = chance(0.08) ? null : `${slug(first)}.${slug(last)}@${slug(company)}.example`
    const phone = chance(0.15) ? null : `${region.dial}01${String(Math.floor(random() * 100_000)).padStart(5, "0")}`
    out.push({
      id: contactId(i),
      name: `${first} ${last}`,
      email,
      phone,
      company,
      title: role.title,
      industry: industry.name,
      segment,
      region: region.name,
      timezone: pick(region.timezones),
      leadScore,
      optedOut: chance(0.05),
      consent: {
        voice: phone !== null && chance(0.7),
        email: email !== null && chance(0.9),
        sms: phone !== null && chance(0.55)
      }
    })
  }
  return out
}

/** Generates `n` demo contacts and upserts them for `tenant`; returns how many were written. */
export const load = Effect.fn("DemoData.load")(function* (tenant: TenantId, n: number, seed = 1) {
  const repo = yield* ContactRepo
  return yield* repo.insertMany(tenant, contacts(tenant, n, seed))
}) satisfies (tenant: TenantId, n: number, seed?: number) => Effect.Effect<number, StorageError, ContactRepo>
