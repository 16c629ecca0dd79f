/**
 * The Anthropic provider over `@anthropic-ai/sdk`: the Messages API with structured
 * outputs (`output_config.format: json_schema`), or one response tool (forced only where
 * the model accepts a forced `tool_choice`), or JSON instructions. `temperature` is sent
 * only to models that accept it. SDK retries are off (`maxRetries: 0`); our policy retries.
 */
import Anthropic from "@anthropic-ai/sdk"
import type { MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages"
import { Effect, Redacted } from "effect"
import * as LlmError from "./LlmError.js"
import type { LlmProvider, ProviderRequest, ProviderResponse } from "./LlmProvider.js"
import * as Usage from "./Usage.js"

/** Settings of the Anthropic client. */
export interface AnthropicSettings {
  readonly apiKey: Redacted.Redacted
  /** Default: the SDK's; set for a proxy or a recorded-fixture server. */
  readonly baseURL?: string | undefined
  readonly timeoutMs: number
}

/** The request body for a call. */
export const body = (r: ProviderRequest): MessageCreateParamsNonStreaming => {
  const caps = r.model.capabilities
  const system =
    r.mode === "json-prompt"
      ? `${r.system}\n\nAnswer with one JSON value only (no prose, no code fences) matching this JSON schema:\n${JSON.stringify(r.output.schema)}`
      : r.system
  const base: MessageCreateParamsNonStreaming = {
    model: r.model.model,
    system,
    messages: [{ role: "user", content: r.prompt }],
    max_tokens: Math.min(r.maxTokens, caps.maxOutputTokens),
    ...(caps.temperature && r.temperature !== null ? { temperature: r.temperature } : {})
  }
  switch (r.mode) {
    case "structured":
      return { ...base, output_config: { format: { type: "json_schema", schema: r.output.schema } } }
    case "tool":
      return {
        ...base,
        tools: [{ name: r.output.name, description: "Give the answer.", input_schema: r.output.schema as Anthropic.Tool.InputSchema }],
        tool_choice: caps.forcedToolChoice ? { type: "tool", name: r.output.name } : { type: "any" }
      }
    case "json-prompt":
      return base
  }
}

/** Reads a message into the provider-neutral response. */
export const read = (message: Anthropic.Message, r: ProviderRequest): ProviderResponse => {
  const text = message.content
    .filter((b): b is Anthropic.TextBlock => b.type === "text")
    .map((b) => b.text)
    .join("")
  const tool = message.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use" && b.name === r.output.name)
  return {
    text: text.length > 0 ? text : null,
    toolArguments: tool?.input,
    usage: Usage.fromAnthropic(message.usage),
    model: message.model ?? r.model.model,
    stopReason: message.stop_reason ?? null
  }
}

/** The provider over an SDK client. */
export const fromClient = (client: Anthropic): LlmProvider => ({
  provider: "anthropic",
  complete: (r) =>
    Effect.tryPromise({
      try: (signal) => client.messages.create(body(r), { timeout: r.timeoutMs, maxRetries: 0, signal }),
      catch: LlmError.fromSdk("anthropic", r.model.model)
    }).pipe(
      Effect.flatMap((message) =>
        message.stop_reason === "refusal"
          ? Effect.fail(LlmError.make("anthropic", r.model.model, "Incomplete", "model refused"))
          : Effect.succeed(read(message, r))
      ),
      Effect.withSpan("AnthropicProvider.complete", { attributes: { "llm.model": r.model.id, "llm.mode": r.mode } })
    )
})

/** The provider with a new SDK client (SDK retries off). */
export const make = (settings: AnthropicSettings): LlmProvider =>
  fromClient(
    new Anthropic({
      apiKey: Redacted.value(settings.apiKey),
      ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
      maxRetries: 0,
      timeout: settings.timeoutMs
    })
  )
