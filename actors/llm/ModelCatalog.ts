/**
 * The models the router knows: provider, size tier and capability flags. Data, like the
 * price table: the flags say how a model must be asked (structured-output mode or a tool,
 * whether `tool_choice` may be forced, whether `temperature` may be set), so adapters never
 * guess from a model's name.
 */

/** Who serves a model. `openai` also covers OpenAI-compatible local servers (`OPENAI_BASE_URL`). */
export type Provider = "openai" | "anthropic" | "offline"

/** Size tier, cheapest first; `offline` is the deterministic stand-in. */
export type Tier = "small" | "medium" | "large" | "premium" | "offline"

/** What a model can do. */
export interface Capabilities {
  /** Answers in a JSON schema given by the provider's structured-output mode. */
  readonly structuredOutput: boolean
  /** Accepts OpenAI's `strict: true` schemas. */
  readonly strictSchema: boolean
  /** Calls tools. */
  readonly tools: boolean
  /** Accepts a forced `tool_choice` (some current Claude models reject it). */
  readonly forcedToolChoice: boolean
  /** Accepts a non-default `temperature`. */
  readonly temperature: boolean
  /** Same input, same output: its answers need no call ledger. */
  readonly deterministic: boolean
  readonly maxOutputTokens: number
}

/** One model. */
export interface ModelSpec {
  /** `provider:model`, the key of the price table. */
  readonly id: string
  readonly provider: Provider
  readonly model: string
  readonly tier: Tier
  readonly capabilities: Capabilities
}

const hosted = (overrides: Partial<Capabilities> = {}): Capabilities => ({
  structuredOutput: true,
  strictSchema: false,
  tools: true,
  forcedToolChoice: true,
  temperature: true,
  deterministic: false,
  maxOutputTokens: 8192,
  ...overrides
})

const spec = (provider: Provider, model: string, tier: Tier, capabilities: Capabilities): ModelSpec => ({
  id: `${provider}:${model}`,
  provider,
  model,
  tier,
  capabilities
})

/** The catalogue of hosted models. */
export const hostedModels: ReadonlyArray<ModelSpec> = [
  spec("openai", "gpt-4.1-nano", "small", hosted({ strictSchema: true })),
  spec("openai", "gpt-4.1-mini", "medium", hosted({ strictSchema: true })),
  spec("openai", "gpt-4.1", "large", hosted({ strictSchema: true })),
  spec("anthropic", "claude-haiku-4-5", "small", hosted()),
  spec("anthropic", "claude-sonnet-4-5", "large", hosted()),
  spec("anthropic", "claude-opus-4-1", "premium", hosted({ forcedToolChoice: false, temperature: false }))
]

/** The offline model: every task, no money, deterministic. */
export const offlineModel: ModelSpec = spec("offline", "offline-v1", "offline", {
  structuredOutput: true,
  strictSchema: false,
  tools: false,
  forcedToolChoice: false,
  temperature: false,
  deterministic: true,
  maxOutputTokens: 1 << 20
})

/**
 * A model of an OpenAI-compatible local server (Ollama, vLLM, llama.cpp): JSON-schema
 * response formats and tools, no forced tool choice, no strict schemas, no price.
 */
export const localModel = (model: string, tier: Tier): ModelSpec =>
  spec("openai", model, tier, hosted({ forcedToolChoice: false, maxOutputTokens: 4096 }))

/** Looks a model up by id in a list. */
export const find = (models: ReadonlyArray<ModelSpec>, id: string): ModelSpec | undefined => models.find((m) => m.id === id)
