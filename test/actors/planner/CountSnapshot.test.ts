/**
 * One planning run counts its audience once per filter (`Planner.withCountSnapshot`), on
 * the real Postgres: a count asked again answers what the first read saw, whatever the
 * order of the filter's fields; a survey's count joins the snapshot; another filter, or a
 * later run, reads afresh.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Planner from "../../../actors/planner/Planner.js"
import { TenantId } from "../../../protocols/Ids.js"
import * as ContactRepo from "../../../storage/ContactRepo.js"
import * as DemoData from "../../../storage/DemoData.js"
import * as Postgres from "../../fixtures/Postgres.js"

const Env = ContactRepo.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

layer(Env, { excludeTestServices: true })("planner count snapshot", (it) => {
  it.effect("a run counts a filter once; another filter and the next run read afresh", () =>
    Effect.gen(function* () {
      const tenant = TenantId.make("count-snapshot")
      yield* DemoData.load(tenant, 40)
      const count = (f: Parameters<ContactRepo.ContactRepoShape["count"]>[1]) => Effect.flatMap(ContactRepo.ContactRepo, (r) => r.count(tenant, f))
      const wide = { segments: ["smb", "mid-market", "enterprise"] as const, minLeadScore: 0 }

      const seen = yield* Planner.withCountSnapshot(
        Effect.gen(function* () {
          const first = yield* count(wide)
          const all = yield* count({})
          yield* DemoData.load(tenant, 80) // 40 more contacts while the run plans
          return {
            first,
            all,
            // the same filter, its fields in another order: answered from the first read
            again: yield* count({ minLeadScore: 0, segments: ["smb", "mid-market", "enterprise"] }),
            allAgain: yield* count({}),
            // a filter not counted before in this run reads the table as it is now
            other: yield* count({ minLeadScore: 0 })
          }
        })
      )
      expect(seen.first).toBe(40)
      expect(seen.all).toBe(40)
      expect(seen.again).toBe(40)
      expect(seen.allAgain).toBe(40)
      expect(seen.other).toBe(80)
      // a survey's count joins the snapshot: a count after it answers what it read, and a
      // survey of a filter already counted answers that count with the rows it reads now
      const survey = (f: Parameters<ContactRepo.ContactRepoShape["count"]>[1]) => Effect.flatMap(ContactRepo.ContactRepo, (r) => r.survey(tenant, f, 2))
      const mixed = yield* Planner.withCountSnapshot(
        Effect.gen(function* () {
          const surveyed = yield* survey({ minLeadScore: 1 })
          const counted = yield* count({})
          yield* DemoData.load(tenant, 120) // 40 more
          return { surveyed, countAfter: yield* count({ minLeadScore: 1 }), surveyAfter: yield* survey({}), counted }
        })
      )
      expect(mixed.countAfter).toBe(mixed.surveyed.matching)
      expect(mixed.surveyAfter.matching).toBe(mixed.counted)
      expect(mixed.surveyAfter.contacts.length).toBe(2)
      expect(yield* count({})).toBe(120)
      // the next run sees the new contacts
      expect(yield* Planner.withCountSnapshot(count(wide))).toBe(120)
    }))
})
