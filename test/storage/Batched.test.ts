/**
 * `Batched`: calls made in the same turn of the event loop reach `run` together, per key and
 * at most `maxBatch` at a time; a call alone in its turn, a call inside a tenant scope and
 * every call of a batch that failed as a whole go through `single`.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import * as Batched from "../../storage/internal/Batched.js"
import * as Tenancy from "../../storage/Tenancy.js"

interface Item {
  readonly key: string
  readonly n: number
}

/** A batched doubling that records what reached `run` and `single`. */
const doubling = (options: { readonly maxBatch?: number; readonly failBatches?: boolean } = {}) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<number>> = []
    const singles: Array<number> = []
    const call = yield* Batched.make<Item, number, string>({
      key: (i) => i.key,
      run: (items) =>
        Effect.suspend(() => {
          batches.push(items.map((i) => i.n))
          if (options.failBatches) return Effect.fail("batch refused")
          return Effect.succeed(items.map((i) => (i.n < 0 ? Exit.fail(`bad ${i.n}`) : Exit.succeed(i.n * 2))))
        }),
      single: (i) =>
        Effect.suspend(() => {
          singles.push(i.n)
          return i.n < 0 ? Effect.fail(`bad ${i.n}`) : Effect.succeed(i.n * 2)
        }),
      maxBatch: options.maxBatch ?? 64
    })
    return { call, batches, singles }
  })

const atOnce = (call: (i: Item) => Effect.Effect<number, string>, items: ReadonlyArray<Item>) =>
  Effect.all(items.map((i) => Effect.either(call(i))), { concurrency: "unbounded" })

describe("Batched", () => {
  it.effect("calls of one turn reach run together, per key, each with its own answer", () =>
    Effect.gen(function* () {
      const { call, batches, singles } = yield* doubling()
      const items = [1, 2, 3, -4, 5].map((n) => ({ key: n % 2 === 0 ? "even" : "odd", n }))
      const answers = yield* atOnce(call, items)
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([2, 4, 6, "bad -4", 10])
      expect(batches.map((b) => [...b].sort())).toEqual([[1, 3, 5], [-4, 2]].map((b) => b.sort()))
      expect(singles).toEqual([])
    }))

  it.effect("at most maxBatch items a batch; a call alone in its turn goes through single", () =>
    Effect.gen(function* () {
      const { call, batches, singles } = yield* doubling({ maxBatch: 2 })
      yield* atOnce(call, [1, 2, 3, 4, 5].map((n) => ({ key: "k", n })))
      expect(batches).toEqual([[1, 2], [3, 4]])
      expect(singles).toEqual([5])
      expect(yield* call({ key: "k", n: 7 })).toBe(14)
      expect(singles).toEqual([5, 7])
    }))

  it.effect("a batch that fails as a whole: each item on its own, one bad item fails alone", () =>
    Effect.gen(function* () {
      const { call, singles } = yield* doubling({ failBatches: true })
      const answers = yield* atOnce(call, [1, -2, 3].map((n) => ({ key: "k", n })))
      expect(answers.map((a) => (a._tag === "Right" ? a.right : a.left))).toEqual([2, "bad -2", 6])
      expect([...singles].sort()).toEqual([-2, 1, 3])
    }))

  it.effect("inside a tenant scope or a transaction a call goes through single, at once", () =>
    Effect.gen(function* () {
      const { call, batches, singles } = yield* doubling()
      const scoped = Effect.locally(Tenancy.currentTenant, Option.some(TenantId.make("t")))
      yield* scoped(atOnce(call, [1, 2].map((n) => ({ key: "k", n }))))
      const inTransaction = Effect.provideService(SqlClient.TransactionConnection, [{} as never, 0] as const)
      yield* inTransaction(atOnce(call, [3, 4].map((n) => ({ key: "k", n }))))
      expect(batches).toEqual([])
      expect(singles).toEqual([1, 2, 3, 4])
    }))
})
