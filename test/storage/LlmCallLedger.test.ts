/**
 * The model-call ledger on Postgres: the first answer recorded for a key wins and a
 * repeat reads it back; keys are per tenant (row-level security keeps tenants apart).
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import * as LlmCallLedger from "../../storage/LlmCallLedger.js"
import * as Postgres from "../fixtures/Postgres.js"

const Env = LlmCallLedger.layer.pipe(Layer.provideMerge(Postgres.layerFresh))
const a = TenantId.make("tenant-a")
const b = TenantId.make("tenant-b")
const entry = (tenantId: TenantId, output: unknown): LlmCallLedger.LlmCallEntry => ({
  tenantId,
  callKey: "acme/draft/msg-1",
  task: "draft",
  provider: "openai",
  model: "gpt-4.1-mini",
  output,
  usage: { inputTokens: 1543, cachedInputTokens: 1024, cacheWriteTokens: 0, outputTokens: 87 },
  costUsd: 0.00046,
  trace: ["answered by openai:gpt-4.1-mini"]
})

layer(Env, { timeout: 30_000 })("LlmCallLedger", (it) => {
  it.effect("records once per key; a repeat reads the original back; tenants are apart", () =>
    Effect.gen(function* () {
      const ledger = yield* LlmCallLedger.LlmCallLedger
      const first = yield* ledger.record(entry(a, { body: "first" }))
      expect(first.duplicate).toBe(false)
      const second = yield* ledger.record(entry(a, { body: "second" }))
      expect(second).toMatchObject({ duplicate: true, entry: { output: { body: "first" }, costUsd: 0.00046 } })
      expect(Option.getOrThrow(yield* ledger.get(a, "acme/draft/msg-1")).usage).toEqual(entry(a, null).usage)
      expect(Option.isNone(yield* ledger.get(b, "acme/draft/msg-1"))).toBe(true)
      expect((yield* ledger.record(entry(b, { body: "b" }))).duplicate).toBe(false)
    })
  )
})
