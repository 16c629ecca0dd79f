/**
 * Context assembly over ingested knowledge (Postgres, embedded graph and vectors): the
 * context of a contact carries its profile, open objections, recent episodes, relationships,
 * similar contacts and conversations of others, and never exceeds its token budget.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { ContactId, TenantId } from "../../protocols/Ids.js"
import { EventId } from "../../protocols/Inbound.js"
import { ContactContext, estimateTokens, fit } from "../../storage/ContactContext.js"
import { Ingestion } from "../../storage/Ingestion.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Knowledge from "../fixtures/Knowledge.js"
import * as Postgres from "../fixtures/Postgres.js"

const tenant = TenantId.make("context")
const now = Date.parse("2026-11-20T12:00:00Z")
const { ids } = Knowledge

layer(Knowledge.layer(Postgres.layerFresh), { excludeTestServices: true })("ContactContext (Postgres)", (it) => {
  it.effect("assembles every layer for a contact within a generous budget", () =>
    Effect.gen(function* () {
      const ingestion = yield* Ingestion
      for (const e of Knowledge.sampleEvents(now)) yield* ingestion.ingest(tenant, e)
      const context = yield* ContactContext
      const ctx = Option.getOrThrow(yield* context.assemble(tenant, ids.ava, { tokenBudget: 2000, query: "Nexus Voice pricing", asOf: new Date(now) }))
      expect(ctx.sections.profile[0]).toContain("Ava Smith, CTO at Acme Software")
      expect(ctx.sections.objections).toEqual([expect.stringMatching(/^price: raised 1×/)])
      expect(ctx.sections.episodes[0]).toContain("Pricing for Nexus Voice") // the relevant one first
      expect(ctx.sections.episodes.length).toBe(2)
      expect(ctx.sections.graph).toEqual(expect.arrayContaining([expect.stringContaining("WORKS_AT → Acme (company)")]))
      expect(ctx.sections.similarContacts[0]).toMatch(/^Ava Smith, CTO at Acme Software \(1\.00\)$/)
      expect(ctx.sections.similarConversations.some((l) => l.includes("Discussed Nexus Voice rollout"))).toBe(true)
      expect(ctx.omitted).toBe(0)
      expect(ctx.tokens).toBeLessThanOrEqual(2000)
      expect(ctx.text).toContain("Open objections:\nprice")
      // the same knowledge as data, for templates
      expect(ctx.facts.openObjections).toEqual(["price"])
      expect(ctx.facts.lastInteraction).toMatchObject({ day: "2026-11-19", channel: "meeting", gist: "Security review", products: [] })
      expect(ctx.facts.interests).toEqual(["Nexus Voice", "Nexus CRM"])
      expect(yield* context.assemble(tenant, ContactId.make("nobody"))).toEqual(Option.none())
    }))

  it.effect("a tight budget keeps the profile and the most important lines, and never overflows", () =>
    Effect.gen(function* () {
      const context = yield* ContactContext
      for (const budget of [0, 20, 60, 120, 250]) {
        const ctx = Option.getOrThrow(yield* context.assemble(tenant, ids.ava, { tokenBudget: budget, asOf: new Date(now) }))
        expect(ctx.tokens, `budget ${budget}`).toBeLessThanOrEqual(budget)
        expect(estimateTokens(ctx.text)).toBe(ctx.tokens)
        if (budget >= 60) expect(ctx.sections.profile.length).toBe(1)
        if (budget <= 120) expect(ctx.omitted).toBeGreaterThan(0)
      }
    }))

  it.effect("a context sees what was written after the last one: new conversations, removed contacts", () =>
    Effect.gen(function* () {
      const fresh = TenantId.make("context-fresh")
      const ingestion = yield* Ingestion
      for (const e of Knowledge.sampleEvents(now)) yield* ingestion.ingest(fresh, e)
      const context = yield* ContactContext
      const of = (id: ContactId) =>
        Effect.map(context.assemble(fresh, id, { tokenBudget: 2000, query: "rollout timeline", asOf: new Date(now) }), Option.getOrThrow)
      // the first assemblies load the vector indexes; the next ones catch them up
      expect((yield* of(ids.ben)).sections.similarConversations.some((l) => l.includes("Rollout timeline"))).toBe(false)
      expect((yield* of(ids.ava)).sections.similarContacts[0]).toMatch(/^Ava Smith, CTO at Acme Software \(1\.00\)$/)
      yield* ingestion.ingest(fresh, {
        type: "inbound.email-received",
        payload: {
          eventId: EventId.make("em-fresh"), contactId: ids.ava, from: "ava@acme.example", subject: "Rollout timeline",
          body: "Can we agree on the rollout timeline for Nexus Voice?", receivedAt: now - 3_600_000, campaignId: null
        }
      })
      yield* ingestion.ingest(fresh, {
        type: "inbound.crm-record-changed",
        payload: { eventId: EventId.make("crm-fresh"), changedAt: now, changedBy: "user:sam", change: { _tag: "ContactDeleted", contactId: ids.avaDup } }
      })
      expect((yield* of(ids.ben)).sections.similarConversations.some((l) => l.includes("Rollout timeline"))).toBe(true)
      expect((yield* of(ids.ava)).sections.similarContacts.some((l) => l.endsWith("(1.00)"))).toBe(false)
      // and inside a transaction of the caller's, the same
      const inScope = yield* Tenancy.withTenant(fresh)(of(ids.ben))
      expect(inScope.text).toBe((yield* of(ids.ben)).text)
    }))

  it.effect("assemblies made at once (read in one statement) answer as those made one at a time", () =>
    Effect.gen(function* () {
      const context = yield* ContactContext
      const asks = [
        [tenant, ids.ava, "Nexus Voice pricing"],
        [tenant, ids.ben, "rollout timeline"],
        [tenant, ContactId.make("nobody"), ""],
        [TenantId.make("context-other"), ids.ava, ""], // another tenant: none of this tenant's contacts
        [tenant, ids.avaDup, "Nexus Voice pricing"],
        [tenant, ids.ava, ""],
        // what an array literal must escape (quotes, braces, a comma, a backslash), in a query
        // that still ranks the pricing episode first (by recency alone it would not be)
        [tenant, ids.ava, 'pricing or "{quote}, \\ back"']
      ] as const
      const ask = ([t, id, query]: (typeof asks)[number]) => context.assemble(t, id, { tokenBudget: 2000, query, asOf: new Date(now) })
      const oneByOne = yield* Effect.forEach(asks, ask)
      const atOnce = yield* Effect.forEach(asks, ask, { concurrency: "unbounded" })
      expect(atOnce).toEqual(oneByOne)
      expect(oneByOne.map(Option.isSome)).toEqual([true, true, false, false, true, true, true])
      expect(Option.getOrThrow(oneByOne[0]!).sections.episodes[0]).toContain("Pricing for Nexus Voice")
      expect(Option.getOrThrow(oneByOne[5]!).sections.episodes[0]).not.toContain("Pricing for Nexus Voice")
      expect(Option.getOrThrow(oneByOne[6]!).sections.episodes[0]).toContain("Pricing for Nexus Voice")
    }))

  it("fit gives each section its share first, then leftovers in priority order", () => {
    const line = (n: number) => "x".repeat(n * 4 - 4) // n tokens with its newline
    const fitted = fit(100, line(10), [
      ["objections", [line(5), line(5), line(5)]],
      ["episodes", [line(30), line(30)]],
      ["graph", []],
      ["similarContacts", [line(4)]],
      ["similarConversations", [line(10)]]
    ])
    expect(estimateTokens(fitted.text)).toBeLessThanOrEqual(100)
    // first pass: only the conversations' 10-token line fits its 20% share (with its title)
    // second pass, in priority order: all objections, one episode whole and the next one cut
    expect(fitted.sections.objections.length).toBe(3)
    expect(fitted.sections.episodes.length).toBe(2)
    expect(fitted.sections.episodes[1]!.endsWith("…")).toBe(true)
    expect(fitted.sections.similarConversations.length).toBe(1)
    expect(fitted.sections.similarContacts).toEqual([])
    expect(fitted.omitted).toBe(1)
  })
})

// one connection, so that its prepared statements are the ones the assemblies ran
layer(Knowledge.layer(Postgres.layerFreshWith({ maxConnections: 1 })), { excludeTestServices: true })("ContactContext (one connection)", (it) => {
  it.effect("assemblies read at once run as one statement, a row each, whose text is planned once whatever their number (a generic plan)", () =>
    Effect.gen(function* () {
      const context = yield* ContactContext
      const sql = yield* SqlClient.SqlClient
      const ask = (n: number) =>
        Effect.forEach(
          [ids.ava, ids.ben, ContactId.make("nobody"), ids.avaDup].slice(0, n),
          (id) => context.assemble(tenant, id, { query: "pricing", asOf: new Date(now) }),
          { concurrency: "unbounded" }
        )
      // one, three, two and four at once
      for (const n of [1, 3, 2, 4]) expect((yield* ask(n)).map(Option.isSome)).toEqual(Array(n).fill(false)) // nothing ingested on this database
      const statements = yield* sql<{ statement: string; generic_plans: number; custom_plans: number }>`
        SELECT statement, generic_plans::int, custom_plans::int FROM pg_prepared_statements WHERE statement LIKE ${"%WITH ORDINALITY AS a(%"}`
      // one text for every batch size, run four times on its generic plan, never planned for its parameters
      expect(statements.length).toBe(1)
      expect(statements[0]!.generic_plans).toBe(4)
      expect(statements[0]!.custom_plans).toBe(0)
    }))
})
