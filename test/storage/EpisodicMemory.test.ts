/**
 * Episodic memory on a real Postgres server: idempotent recording, the last N interactions,
 * recall ranked by `a * relevance + (1 - a) * exp(-lambda * age)` with configurable weights,
 * the 60-day engagement trend, the last mention of a term, and objections still open.
 */
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import { ContactId, TenantId } from "../../protocols/Ids.js"
import type { Entities, NewEpisode } from "../../storage/Episode.js"
import * as EpisodicMemory from "../../storage/EpisodicMemory.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

const DAY = 86_400_000
const asOf = new Date("2026-11-20T12:00:00Z")
const ago = (days: number) => new Date(asOf.getTime() - days * DAY)
const tenant = TenantId.make("memory")
const [c1, c2] = [ContactId.make("ct-1"), ContactId.make("ct-2")]

const episode = (id: string, days: number, over: Partial<NewEpisode> & { entities?: Entities }): NewEpisode => ({
  id,
  channel: "email",
  direction: "inbound",
  occurredAt: ago(days),
  durationSec: null,
  outcome: null,
  summary: null,
  content: "",
  entities: { products: [], objections: [], nextSteps: [] },
  participants: [{ kind: "contact", id: c1 }],
  campaignId: null,
  dealId: null,
  source: "test",
  ...over
})

const episodes: ReadonlyArray<NewEpisode> = [
  episode("e1", 50, {
    direction: "outbound", summary: "Intro to Nexus CRM", content: "We discussed Nexus CRM. The price is too high for us.",
    entities: { products: ["Nexus CRM"], objections: [{ topic: "price", status: "raised" }], nextSteps: [] }
  }),
  episode("e2", 30, {
    channel: "voice", summary: "Security review", content: "They need a security review with SOC 2 answers before anything else.",
    entities: { products: [], objections: [{ topic: "security", status: "raised" }], nextSteps: ["send proposal"] }
  }),
  episode("e3", 10, {
    channel: "meeting", direction: "internal", summary: "Pricing discussion", content: "The discount addressed the price concern.",
    participants: [{ kind: "contact", id: c1 }, { kind: "contact", id: c2 }],
    entities: { products: [], objections: [{ topic: "Price", status: "resolved" }], nextSteps: [] }
  }),
  episode("e4", 2, {
    summary: "Timing", content: "Let us talk again next quarter.",
    entities: { products: [], objections: [{ topic: "timing", status: "raised" }], nextSteps: ["follow up"] }
  }),
  episode("e5", 1, { summary: "Voice question", content: "Does Nexus Voice work in Germany?", entities: { products: ["Nexus Voice"], objections: [], nextSteps: [] } })
]

const weights = (a: number, lambda: number) =>
  EpisodicMemory.layer.pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([
      ["NEXUS_MEMORY_RELEVANCE_WEIGHT", String(a)],
      ["NEXUS_MEMORY_DECAY_PER_DAY", String(lambda)]
    ]))))
  )

const Env = EpisodicMemory.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

layer(Env, { excludeTestServices: true })("EpisodicMemory (Postgres)", (it) => {
  it.effect("records idempotently, with the recording actor, and answers per contact and tenant", () =>
    Effect.gen(function* () {
      const memory = yield* EpisodicMemory.EpisodicMemory
      const actor = Tenancy.agentActor("system:ingest", "ingest", `00-${"1f".repeat(16)}-${"2e".repeat(8)}-01`)
      for (const e of episodes) expect((yield* memory.record(tenant, e).pipe(Tenancy.withActor(actor))).duplicate).toBe(false)
      const again = yield* memory.record(tenant, { ...episodes[0]!, content: "something else" })
      expect(again.duplicate).toBe(true)
      expect(again.episode.content).toBe(episodes[0]!.content)
      expect([again.episode.recordedBy, again.episode.viaAgent, again.episode.traceId]).toEqual(["system:ingest", "ingest", "1f".repeat(16)])

      expect((yield* memory.recent(tenant, c1, 3)).map((e) => e.id)).toEqual(["e5", "e4", "e3"])
      expect((yield* memory.recent(tenant, c2, 10)).map((e) => e.id)).toEqual(["e3"])
      expect(yield* memory.recent(TenantId.make("memory-other"), c1, 10)).toEqual([])
      expect(Option.getOrThrow(yield* memory.get(tenant, "e2")).entities.nextSteps).toEqual(["send proposal"])
    }))

  it.effect("finds the last mention of a term, as an entity or in the text", () =>
    Effect.gen(function* () {
      const memory = yield* EpisodicMemory.EpisodicMemory
      const last = (term: string, contactId?: ContactId) =>
        Effect.map(memory.lastMention(tenant, term, contactId ? { contactId } : {}), Option.map((e) => e.id))
      expect(yield* last("price")).toEqual(Option.some("e3"))
      expect(yield* last("Nexus Voice")).toEqual(Option.some("e5"))
      expect(yield* last("nexus crm")).toEqual(Option.some("e1"))
      expect(yield* last("SOC 2")).toEqual(Option.some("e2"))
      expect(yield* last("SOC 2", c2)).toEqual(Option.none())
      expect(yield* last("blockchain")).toEqual(Option.none())
    }))

  it.effect("lists objections raised and not resolved since, latest first", () =>
    Effect.gen(function* () {
      const memory = yield* EpisodicMemory.EpisodicMemory
      const open = yield* memory.openObjections(tenant, c1)
      expect(open.map((o) => [o.topic, o.episodeId, o.times])).toEqual([["timing", "e4", 1], ["security", "e2", 1]])
      expect(yield* memory.openObjections(tenant, c2)).toEqual([])
    }))

  it.effect("shows engagement over the last 60 days in buckets, and its direction", () =>
    Effect.gen(function* () {
      const memory = yield* EpisodicMemory.EpisodicMemory
      const trend = yield* memory.engagementTrend(tenant, c1, { asOf })
      expect(trend.buckets.map((b) => b.engagement)).toEqual([0, 1, 0, 2, 0, 5])
      expect(trend.buckets.map((b) => b.interactions)).toEqual([0, 1, 0, 1, 0, 3])
      expect(trend.direction).toBe("rising")
      expect((yield* memory.engagementTrend(tenant, c2, { asOf, days: 5 })).direction).toBe("none")
    }))

  it.effect("ranks recall by a * relevance + (1 - a) * exp(-lambda * age), with weights from Config", () =>
    Effect.gen(function* () {
      const lambda = Math.LN2 / 14
      const check = (a: number) =>
        Effect.gen(function* () {
          const memory = yield* EpisodicMemory.EpisodicMemory
          const got = yield* memory.recall(tenant, { contactId: c1, query: "security review", asOf })
          for (const r of got) {
            const age = (asOf.getTime() - r.episode.occurredAt.getTime()) / DAY
            expect(r.recency).toBeCloseTo(Math.exp(-lambda * age), 9)
            expect(r.score).toBeCloseTo(a * r.relevance + (1 - a) * r.recency, 9)
          }
          expect(got.map((r) => r.score)).toEqual([...got.map((r) => r.score)].sort((x, y) => y - x))
          return got
        }).pipe(Effect.provide(weights(a, lambda)))
      const balanced = yield* check(0.6)
      expect(balanced[0]!.episode.id).toBe("e2") // the only relevant one, though 30 days old
      expect(balanced[0]!.relevance).toBe(1)
      expect((yield* check(0)).map((r) => r.episode.id)).toEqual(["e5", "e4", "e3", "e2", "e1"]) // recency alone
      expect((yield* check(1))[0]!.episode.id).toBe("e2")

      // tenant-wide: only episodes that match the query
      const memory = yield* EpisodicMemory.EpisodicMemory
      const wide = yield* memory.recall(tenant, { query: "price", asOf })
      expect(wide.map((r) => r.episode.id).sort()).toEqual(["e1", "e3"])
      const none = yield* memory.recall(tenant, {}).pipe(Effect.flip)
      expect(none.reason).toBe("Invalid")
    }))
})
