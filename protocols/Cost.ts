/**
 * What model calls cost: tokens and money, carried on agent replies (plan, draft,
 * analysis, adjustment) so the campaign actor can charge its budget. Money is computed
 * from each provider's usage fields and the dated price table (actors/llm/PriceTable.ts).
 */
import { Schema } from "effect"

/** Tokens and money of one or more model calls. */
export const Cost = Schema.Struct({
  /** Model calls made (calls served from the call ledger are not counted again). */
  calls: Schema.Int.pipe(Schema.nonNegative()),
  /** Every input token, cached ones included. */
  inputTokens: Schema.Int.pipe(Schema.nonNegative()),
  /** Input tokens read from the provider's prompt cache (billed at the cached rate). */
  cachedInputTokens: Schema.Int.pipe(Schema.nonNegative()),
  /** Input tokens written to the provider's prompt cache (Anthropic bills them apart). */
  cacheWriteTokens: Schema.Int.pipe(Schema.nonNegative()),
  outputTokens: Schema.Int.pipe(Schema.nonNegative()),
  /** Money in US dollars. */
  usd: Schema.Number.pipe(Schema.nonNegative()),
  /** `provider:model` of every model that answered. */
  models: Schema.Array(Schema.String),
  /** Fallbacks taken, e.g. `openai:gpt-4.1 → offline:offline-v1 (circuit open)`. */
  fallbacks: Schema.Array(Schema.String)
})
export type Cost = typeof Cost.Type

/** No calls, no money. */
export const zero: Cost = {
  calls: 0,
  inputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  usd: 0,
  models: [],
  fallbacks: []
}

/** The sum of two costs (model and fallback lists merged without repeats). */
export const add = (a: Cost, b: Cost): Cost => ({
  calls: a.calls + b.calls,
  inputTokens: a.inputTokens + b.inputTokens,
  cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
  cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
  outputTokens: a.outputTokens + b.outputTokens,
  usd: a.usd + b.usd,
  models: [...new Set([...a.models, ...b.models])],
  fallbacks: [...a.fallbacks, ...b.fallbacks]
})
