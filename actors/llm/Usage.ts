/**
 * Token usage of one model call, normalised across providers, and its price.
 *
 * The two SDKs count input differently: OpenAI's `prompt_tokens` *include* the cached
 * tokens (`prompt_tokens_details.cached_tokens`); Anthropic's `input_tokens` *exclude*
 * cache reads and writes, which it reports apart (`cache_read_input_tokens`,
 * `cache_creation_input_tokens`). Here `inputTokens` is always every input token.
 */
import type { Cost } from "../../protocols/Cost.js"
import { type ModelPrice, prices } from "./PriceTable.js"

/** Normalised usage. */
export interface Usage {
  /** Every input token, cached and cache-written ones included. */
  readonly inputTokens: number
  readonly cachedInputTokens: number
  readonly cacheWriteTokens: number
  readonly outputTokens: number
}

/** No tokens. */
export const empty: Usage = { inputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0 }

const n = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0)

/** From an OpenAI `CompletionUsage` (prompt tokens include cached ones). */
export const fromOpenAi = (u: unknown): Usage => {
  const usage = (u ?? {}) as { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } }
  return {
    inputTokens: n(usage.prompt_tokens),
    cachedInputTokens: n(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteTokens: 0,
    outputTokens: n(usage.completion_tokens)
  }
}

/** From an Anthropic `Usage` (input tokens exclude cache reads and writes). */
export const fromAnthropic = (u: unknown): Usage => {
  const usage = (u ?? {}) as {
    input_tokens?: number
    output_tokens?: number
    cache_read_input_tokens?: number | null
    cache_creation_input_tokens?: number | null
  }
  const read = n(usage.cache_read_input_tokens)
  const write = n(usage.cache_creation_input_tokens)
  return { inputTokens: n(usage.input_tokens) + read + write, cachedInputTokens: read, cacheWriteTokens: write, outputTokens: n(usage.output_tokens) }
}

/** The rough token count of a text (4 characters a token), used by the offline model. */
export const estimateTokens = (text: string): number => tokensOfLength(text.length)

/** Estimated tokens of a text of `chars` characters. */
export const tokensOfLength = (chars: number): number => Math.ceil(chars / 4)

/** The price row of a model, if the table has one. */
export const priceOf = (modelId: string): ModelPrice | undefined => prices[modelId]

/** Money of a usage at a model's prices (0 for an unpriced model). */
export const usdOf = (modelId: string, u: Usage): number => {
  const p = priceOf(modelId)
  if (p === undefined) return 0
  const fresh = Math.max(0, u.inputTokens - u.cachedInputTokens - u.cacheWriteTokens)
  return (fresh * p.input + u.cachedInputTokens * p.cachedInput + u.cacheWriteTokens * p.cacheWrite + u.outputTokens * p.output) / 1e6
}

/** The `Cost` of one call. */
export const costOf = (modelId: string, u: Usage, fallbacks: ReadonlyArray<string> = []): Cost => ({
  calls: 1,
  inputTokens: u.inputTokens,
  cachedInputTokens: u.cachedInputTokens,
  cacheWriteTokens: u.cacheWriteTokens,
  outputTokens: u.outputTokens,
  usd: usdOf(modelId, u),
  models: [modelId],
  fallbacks: [...fallbacks]
})
