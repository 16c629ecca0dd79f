/**
 * The port every model provider implements (OpenAI, Anthropic, offline): one chat
 * completion with an optional JSON-schema output or a response tool, returning the raw
 * text or tool arguments and the normalised usage. Adapters convert SDK errors to
 * `LlmError`; retries, timeouts around them, breaker, routing and decoding live in `Llm`.
 */
import { Context, type Effect } from "effect"
import type { LlmError } from "./LlmError.js"
import type { ModelSpec, Provider } from "./ModelCatalog.js"
import type { Usage } from "./Usage.js"

/** A JSON schema object. */
export type JsonSchema = Record<string, unknown>

/** How the answer's shape is asked for (chosen from the model's capability flags). */
export type OutputMode =
  /** The provider's structured-output mode (OpenAI `response_format`, Anthropic `output_config.format`). */
  | "structured"
  /** One tool whose arguments are the answer (forced when the model allows it). */
  | "tool"
  /** Instructions plus JSON parsing of the text (models without either). */
  | "json-prompt"

/** One provider call. */
export interface ProviderRequest {
  readonly model: ModelSpec
  readonly system: string
  readonly prompt: string
  /** The answer's JSON schema, whether it fits strict modes, and the length of its JSON text. */
  readonly output: { readonly name: string; readonly schema: JsonSchema; readonly strict: boolean; readonly chars: number }
  readonly mode: OutputMode
  readonly maxTokens: number
  readonly temperature: number | null
  readonly timeoutMs: number
  /** The task's purpose and structured input (the offline provider answers from these). */
  readonly purpose: string
  readonly input: unknown
  /** The task's offline answer (used only by the offline provider). */
  readonly offline: (input: unknown) => unknown
}

/** What a provider answered. */
export interface ProviderResponse {
  /** The answer as JSON text (structured and json-prompt modes) or null. */
  readonly text: string | null
  /** The response tool's arguments (tool mode), already parsed. */
  readonly toolArguments: unknown
  readonly usage: Usage
  /** Model name the provider reports. */
  readonly model: string
  /** Why generation stopped (`stop`, `end_turn`, `length`, `max_tokens`, `tool_use`…). */
  readonly stopReason: string | null
}

/** One provider. */
export interface LlmProvider {
  readonly provider: Provider
  readonly complete: (request: ProviderRequest) => Effect.Effect<ProviderResponse, LlmError>
  /**
   * Answers in this process, without I/O (the offline provider): its calls run without the
   * call timeout, which guards a network call and costs a race of two fibers and a timer.
   */
  readonly inProcess?: boolean
}

/** The providers configured in this process, by name (offline always present). */
export class LlmProviders extends Context.Tag("nexus/llm/LlmProviders")<
  LlmProviders,
  { readonly providers: ReadonlyMap<Provider, LlmProvider>; readonly models: ReadonlyArray<ModelSpec> }
>() {}
