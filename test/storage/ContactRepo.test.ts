/**
 * ContactRepo against a fresh database on the real Postgres: upsert, filters, keyset
 * windows (every matching row exactly once, in order, ties on score included), surveys
 * (count and first contacts in one statement), tenancy.
 */
import { expect, layer } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import type { AudienceFilter, ContactSnapshot } from "../../protocols/Campaign.js"
import { ContactId, TenantId } from "../../protocols/Ids.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

const TestLayer = ContactRepo.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

/** What the repository should return for a filter, computed in memory from the same contacts. */
const expected = (all: ReadonlyArray<ContactSnapshot>, f: AudienceFilter): ReadonlyArray<ContactSnapshot> =>
  all
    .filter((c) =>
      (f.segments === undefined || f.segments.includes(c.segment)) &&
      (f.industries === undefined || f.industries.includes(c.industry)) &&
      (f.regions === undefined || f.regions.includes(c.region)) &&
      (f.titleKeywords === undefined ||
        f.titleKeywords.some((k) => c.title.toLowerCase().includes(k.toLowerCase()))) &&
      (f.minLeadScore === undefined || c.leadScore >= f.minLeadScore)
    )
    .sort((a, b) => b.leadScore - a.leadScore || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

/** Reads every window of `filter` with page size `limit`; fails if paging does not terminate. */
const pageAll = (tenant: TenantId, filter: AudienceFilter, limit: number) =>
  Effect.gen(function* () {
    const repo = yield* ContactRepo.ContactRepo
    const seen: Array<ContactSnapshot> = []
    let after: ContactRepo.Cursor | null = null
    for (let pages = 0; ; pages++) {
      if (pages > 10_000) return yield* Effect.dieMessage("paging did not terminate")
      const w: ContactRepo.Window = yield* repo.window(tenant, filter, after, limit)
      expect(w.contacts.length, "a window never exceeds its limit").toBeLessThanOrEqual(limit)
      seen.push(...w.contacts)
      if (w.next === null) {
        expect(w.contacts.length, "next is null only on a short window").toBeLessThan(limit)
        return seen
      }
      after = w.next
    }
  })

/** Seeds 1200 demo contacts for a tenant of its own; returns them. */
const seeded = (name: string) =>
  Effect.gen(function* () {
    const tenant = TenantId.make(name)
    const all = DemoData.contacts(tenant, 1200, 7)
    expect(yield* ContactRepo.ContactRepo.pipe(Effect.flatMap((r) => r.insertMany(tenant, all)))).toBe(1200)
    return { tenant, all }
  })

layer(TestLayer, { excludeTestServices: true, timeout: "30 seconds" })("ContactRepo (Postgres)", (it) => {

  it.effect("insertMany upserts in batches and returns the count", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const { tenant, all } = yield* seeded("upsert")
      expect(yield* repo.count(tenant, {})).toBe(1200)
      // same ids again, one changed: still 1200 rows, the change applied
      const first = all[0]!
      const changed = { ...first, title: "Chief Happiness Officer", leadScore: 99.5 }
      expect(yield* repo.insertMany(tenant, [changed])).toBe(1)
      expect(yield* repo.count(tenant, {})).toBe(1200)
      expect(yield* repo.get(tenant, first.id)).toEqual(Option.some(changed))
      expect(yield* repo.insertMany(tenant, [first])).toBe(1)
      expect(yield* repo.get(tenant, first.id)).toEqual(Option.some(first))
      expect(yield* repo.get(tenant, ContactId.make("ct-999999"))).toEqual(Option.none())
    }))

  it.effect("window pages every matching contact exactly once, score desc then id", () =>
    Effect.gen(function* () {
      const { tenant, all } = yield* seeded("paging")
      // scores are integers 0..100 over 1200 contacts: many ties that the cursor must split by id
      const want = expected(all, {})
      for (const limit of [1, 7, 100, 1200, 5000]) {
        const got = yield* pageAll(tenant, {}, limit)
        expect(got.map((c) => c.id), `limit ${limit}`).toEqual(want.map((c) => c.id))
        expect(new Set(got.map((c) => c.id)).size).toBe(want.length)
      }
      expect(yield* pageAll(tenant, {}, 50)).toEqual(want)
    }))

  it.effect("a window cut with takeFirst resumes after its last kept contact (the campaign's tenant-limited windows)", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const { tenant, all } = yield* seeded("cut")
      const want = expected(all, {})
      // fetch 40, keep a varying share of it (as a tenant grant allows), resume from there
      const seen: Array<ContactSnapshot> = []
      let after: ContactRepo.Cursor | null = null
      for (let i = 0; seen.length < want.length && i < 1000; i++) {
        const fetched: ContactRepo.Window = yield* repo.window(tenant, {}, after, 40)
        const kept = ContactRepo.takeFirst(fetched, 1 + (i % 40))
        seen.push(...kept.contacts)
        if (kept.next === null) break
        after = kept.next
      }
      expect(seen.map((c) => c.id)).toEqual(want.map((c) => c.id))
      // keeping all of a window (or more) is the window itself
      const w = yield* repo.window(tenant, {}, null, 10)
      expect(ContactRepo.takeFirst(w, 10)).toBe(w)
      expect(ContactRepo.takeFirst(w, 50)).toBe(w)
      const cut = ContactRepo.takeFirst(w, 3)
      expect(cut.contacts).toEqual(w.contacts.slice(0, 3))
      expect(cut.next).toEqual({ score: w.contacts[2]!.leadScore, id: w.contacts[2]!.id })
    }))

  it.effect("filters narrow like the in-memory reference, in windows, in count and in a survey", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const { tenant, all } = yield* seeded("filters")
      const filters: ReadonlyArray<AudienceFilter> = [
        { segments: ["enterprise"] },
        { segments: ["mid-market", "smb"], minLeadScore: 60 },
        { industries: ["SaaS", "Healthcare"] },
        { regions: ["Europe"], titleKeywords: ["vp", "HEAD OF"] },
        { titleKeywords: ["cto"] },
        { segments: ["enterprise"], industries: ["Financial Services"], regions: ["North America"], minLeadScore: 40 },
        { minLeadScore: 100 },
        { titleKeywords: ["%"] },
        { segments: [] },
        { titleKeywords: [] }
      ]
      for (const f of filters) {
        const want = expected(all, f)
        const label = JSON.stringify(f)
        expect(yield* repo.count(tenant, f), `count ${label}`).toBe(want.length)
        // the count and the first contacts in one statement: the same answers
        for (const top of [0, 3, 5000]) {
          const survey = yield* repo.survey(tenant, f, top)
          expect(survey.matching, `survey count ${label}`).toBe(want.length)
          expect(survey.contacts, `survey top ${top} ${label}`).toEqual(want.slice(0, top))
        }
        const got = yield* pageAll(tenant, f, 13)
        expect(got.map((c) => c.id), `window ${label}`).toEqual(want.map((c) => c.id))
      }
      expect(expected(all, { segments: ["enterprise"] }).length).toBeGreaterThan(200)
      expect(expected(all, { titleKeywords: ["%"] }).length).toBe(0)
    }))

  it.effect("a cursor resumes after rows inserted ahead of it without repeating", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const t = TenantId.make("resume")
      const all = DemoData.contacts(t, 50, 3)
      yield* repo.insertMany(t, all)
      const w1 = yield* repo.window(t, {}, null, 20)
      expect(w1.next).not.toBeNull()
      // a late contact that sorts before the cursor is not seen; the rest continue in order
      yield* repo.insertMany(t, [{ ...all[1]!, id: ContactId.make("ct-late"), leadScore: 100 }])
      const rest = yield* Effect.gen(function* () {
        const seen: Array<ContactSnapshot> = []
        let after = w1.next
        while (after !== null) {
          const w = yield* repo.window(t, {}, after, 20)
          seen.push(...w.contacts)
          after = w.next
        }
        return seen
      })
      const ids = [...w1.contacts, ...rest].map((c) => c.id)
      expect(ids.length).toBe(50)
      expect(new Set(ids).size).toBe(50)
      expect(ids).not.toContain("ct-late")
    }))

  it.effect("tenants do not see each other's contacts", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const { tenant, all } = yield* seeded("initech")
      const other = TenantId.make("globex")
      expect(yield* repo.count(other, {})).toBe(0)
      expect(yield* repo.window(other, {}, null, 10)).toEqual({ contacts: [], next: null })
      expect(yield* repo.survey(other, {}, 10)).toEqual({ matching: 0, contacts: [] })
      yield* repo.insertMany(other, all.slice(0, 5))
      expect(yield* repo.count(other, {})).toBe(5)
      expect(yield* repo.count(tenant, {})).toBe(1200)
      const survey = yield* repo.survey(other, {}, 10)
      expect([survey.matching, survey.contacts.length]).toEqual([5, 5])
      expect(yield* repo.get(other, all[6]!.id)).toEqual(Option.none())
    }))

  it.effect("a rule violation fails with a non-retryable StorageError", () =>
    Effect.gen(function* () {
      const repo = yield* ContactRepo.ContactRepo
      const tenant = TenantId.make("rules")
      const all = DemoData.contacts(tenant, 3, 1)
      yield* repo.insertMany(tenant, all)
      const error = yield* repo.insertMany(tenant, [{ ...all[0]!, leadScore: 150 }]).pipe(Effect.flip)
      expect(error._tag).toBe("StorageError")
      expect(error.reason).toBe("Constraint")
      expect(error.retryable).toBe(false)
      expect(error.operation).toBe("ContactRepo.insertMany")
      // the failed batch rolled back: the original row is intact
      expect(yield* repo.get(tenant, all[0]!.id)).toEqual(Option.some(all[0]!))
    }))

  it.effect("a window resumed in the middle of a large audience seeks the index: it reads its own rows, not the audience before them", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const tenant = TenantId.make("seek")
      const all = DemoData.contacts(tenant, 20_000, 11)
      yield* (yield* ContactRepo.ContactRepo).insertMany(tenant, all)
      // statistics, as autovacuum keeps them (the owner analyzes; connections act as the application role)
      yield* sql.withTransaction(Effect.zipRight(sql`SET LOCAL ROLE NONE`, sql`ANALYZE contacts`))
      const ordered = expected(all, {})
      // resume after the 10,000th contact, in the middle of a run of equal scores
      const at = ordered[9_999]!
      const after = { score: at.leadScore, id: at.id }
      expect(ordered.filter((c) => c.leadScore === at.leadScore).length, "scores tie: the cursor's id matters").toBeGreaterThan(50)
      const size = 100
      const statement = ContactRepo.windowStatement(sql, tenant, {}, after, size)
      // the same rows the repository returns
      const window = yield* (yield* ContactRepo.ContactRepo).window(tenant, {}, after, size)
      expect(window.contacts.map((c) => c.id)).toEqual(ordered.slice(10_000, 10_100).map((c) => c.id))
      // and what the plan read of the table to find them
      const [explained] = yield* Tenancy.read(sql, tenant)(sql<{ "QUERY PLAN": ReadonlyArray<{ Plan: unknown }> }>`EXPLAIN (ANALYZE, FORMAT JSON) ${statement}`)
      let read = 0
      const walk = (node: any) => {
        if (node["Relation Name"] === "contacts") read += (node["Actual Rows"] ?? 0) * (node["Actual Loops"] ?? 1) + (node["Rows Removed by Filter"] ?? 0)
        for (const child of node.Plans ?? []) walk(child)
      }
      walk(explained!["QUERY PLAN"][0]!.Plan)
      expect(read).toBeGreaterThan(0)
      expect(read, "rows the scans read (a scan from the audience's start reads 10,000)").toBeLessThanOrEqual(3 * size)
    }))
})
