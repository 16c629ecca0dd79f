/**
 * The dated price table of the models the router may pick: US dollars per million tokens,
 * as the providers publish them. Data, not logic: change a price by editing a row and its
 * date; `Usage.costOf` reads it. A model missing here costs 0 and is reported as unpriced.
 *
 * `cachedInput`: OpenAI's cached-input rate and Anthropic's cache-read rate.
 * `cacheWrite`: Anthropic's 5-minute cache-write rate (OpenAI bills cache writes as input).
 */

/** Prices of one model, per million tokens. */
export interface ModelPrice {
  readonly input: number
  readonly cachedInput: number
  readonly cacheWrite: number
  readonly output: number
  /** The day this row was checked against the provider's price list. */
  readonly asOf: string
}

/** The table: `provider:model` → prices. */
export const prices: Readonly<Record<string, ModelPrice>> = {
  "openai:gpt-4.1": { input: 2.0, cachedInput: 0.5, cacheWrite: 2.0, output: 8.0, asOf: "2025-11-01" },
  "openai:gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, cacheWrite: 0.4, output: 1.6, asOf: "2025-11-01" },
  "openai:gpt-4.1-nano": { input: 0.1, cachedInput: 0.025, cacheWrite: 0.1, output: 0.4, asOf: "2025-11-01" },
  "openai:gpt-4o-mini": { input: 0.15, cachedInput: 0.075, cacheWrite: 0.15, output: 0.6, asOf: "2025-11-01" },
  "anthropic:claude-opus-4-1": { input: 15.0, cachedInput: 1.5, cacheWrite: 18.75, output: 75.0, asOf: "2025-11-01" },
  "anthropic:claude-sonnet-4-5": { input: 3.0, cachedInput: 0.3, cacheWrite: 3.75, output: 15.0, asOf: "2025-11-01" },
  "anthropic:claude-haiku-4-5": { input: 1.0, cachedInput: 0.1, cacheWrite: 1.25, output: 5.0, asOf: "2025-11-01" },
  "offline:offline-v1": { input: 0, cachedInput: 0, cacheWrite: 0, output: 0, asOf: "2025-11-01" }
}
