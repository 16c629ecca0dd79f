/**
 * The OpenAI provider over the `openai` SDK: chat completions with `response_format:
 * json_schema` (structured outputs; `strict` where the model takes it), or one response
 * tool, or JSON instructions. `baseURL` comes from `OPENAI_BASE_URL`, so the same adapter
 * talks to local OpenAI-compatible servers (Ollama, vLLM, llama.cpp). The SDK's own
 * retries are off (`maxRetries: 0`): our policy retries, with the call ledger, so a retried
 * timeout is never billed twice behind our back.
 */
import { Effect, Redacted } from "effect"
import OpenAI from "openai"
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions"
import * as LlmError from "./LlmError.js"
import type { LlmProvider, ProviderRequest, ProviderResponse } from "./LlmProvider.js"
import * as Usage from "./Usage.js"

/** Settings of the OpenAI client. */
export interface OpenAiSettings {
  readonly apiKey: Redacted.Redacted
  /** Default: the SDK's (OpenAI's API); set for local servers. */
  readonly baseURL?: string | undefined
  /** Per-request timeout in ms (the SDK's), also set per call. */
  readonly timeoutMs: number
}

const jsonInstruction = (r: ProviderRequest) =>
  `Answer with one JSON value only (no prose, no code fences) matching this JSON schema:\n${JSON.stringify(r.output.schema)}`

/** The request body for a call. */
export const body = (r: ProviderRequest): ChatCompletionCreateParamsNonStreaming => {
  const caps = r.model.capabilities
  const system = r.mode === "json-prompt" ? `${r.system}\n\n${jsonInstruction(r)}` : r.system
  const base: ChatCompletionCreateParamsNonStreaming = {
    model: r.model.model,
    messages: [
      { role: "system", content: system },
      { role: "user", content: r.prompt }
    ],
    max_completion_tokens: Math.min(r.maxTokens, caps.maxOutputTokens),
    ...(caps.temperature && r.temperature !== null ? { temperature: r.temperature } : {})
  }
  switch (r.mode) {
    case "structured":
      return {
        ...base,
        response_format: {
          type: "json_schema",
          json_schema: { name: r.output.name, schema: r.output.schema, strict: r.output.strict && caps.strictSchema }
        }
      }
    case "tool":
      return {
        ...base,
        tools: [{ type: "function", function: { name: r.output.name, description: "Give the answer.", parameters: r.output.schema } }],
        tool_choice: caps.forcedToolChoice ? { type: "function", function: { name: r.output.name } } : "required"
      }
    case "json-prompt":
      return base
  }
}

/** Reads a completion into the provider-neutral response. */
export const read = (completion: OpenAI.Chat.Completions.ChatCompletion, r: ProviderRequest): ProviderResponse => {
  const choice = completion.choices[0]
  const message = choice?.message
  const call = message?.tool_calls?.find((c) => c.type === "function")
  let toolArguments: unknown = undefined
  if (call !== undefined && call.type === "function") {
    try {
      toolArguments = JSON.parse(call.function.arguments)
    } catch {
      toolArguments = call.function.arguments
    }
  }
  return {
    text: message?.content ?? null,
    toolArguments,
    usage: Usage.fromOpenAi(completion.usage),
    model: completion.model ?? r.model.model,
    stopReason: choice?.finish_reason ?? null
  }
}

/** The provider over an SDK client. */
export const fromClient = (client: OpenAI): LlmProvider => ({
  provider: "openai",
  complete: (r) =>
    Effect.tryPromise({
      try: (signal) => client.chat.completions.create(body(r), { timeout: r.timeoutMs, maxRetries: 0, signal }),
      catch: LlmError.fromSdk("openai", r.model.model)
    }).pipe(
      Effect.flatMap((completion) => {
        const refusal = completion.choices[0]?.message?.refusal
        return refusal
          ? Effect.fail(LlmError.make("openai", r.model.model, "Incomplete", `model refused: ${refusal}`))
          : Effect.succeed(read(completion, r))
      }),
      Effect.withSpan("OpenAiProvider.complete", { attributes: { "llm.model": r.model.id, "llm.mode": r.mode } })
    )
})

/** The provider with a new SDK client (SDK retries off). */
export const make = (settings: OpenAiSettings): LlmProvider =>
  fromClient(
    new OpenAI({
      apiKey: Redacted.value(settings.apiKey),
      ...(settings.baseURL ? { baseURL: settings.baseURL } : {}),
      maxRetries: 0,
      timeout: settings.timeoutMs
    })
  )
