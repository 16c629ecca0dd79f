/**
 * The LLM service against recorded responses of both providers, played by a loopback
 * server to the real `openai` and `@anthropic-ai/sdk` clients (no mock of our code):
 * structured-output request bodies, usage → tokens and money (OpenAI's prompt tokens
 * include cached ones, Anthropic's input tokens exclude cache reads and writes), our retry
 * policy with the SDKs' retries off (rate limits with retry-after, overload, timeouts),
 * non-retryable errors, tool mode from capability flags, `OPENAI_BASE_URL` for local
 * servers, the circuit breaker falling back to a cheaper then the offline model (stated in
 * the trace and the cost), and the call ledger answering a re-run without a second request.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import * as OutcomeAnalysis from "../../../actors/analysis/OutcomeAnalysis.js"
import * as Content from "../../../actors/content/Content.js"
import * as CircuitBreaker from "../../../actors/llm/CircuitBreaker.js"
import * as Llm from "../../../actors/llm/Llm.js"
import { LlmProviders } from "../../../actors/llm/LlmProvider.js"
import * as ModelCatalog from "../../../actors/llm/ModelCatalog.js"
import * as OfflineProvider from "../../../actors/llm/OfflineProvider.js"
import * as AnthropicProvider from "../../../actors/llm/AnthropicProvider.js"
import * as OpenAiProvider from "../../../actors/llm/OpenAiProvider.js"
import * as Model from "../../../actors/Model.js"
import { ContactId, TenantId } from "../../../protocols/Ids.js"
import * as LlmCallLedger from "../../../storage/LlmCallLedger.js"
import anthropic from "../../fixtures/llm/anthropic.json" with { type: "json" }
import openai from "../../fixtures/llm/openai.json" with { type: "json" }
import * as ProviderServer from "../../fixtures/ProviderServer.js"

const tenant = TenantId.make("llm")
const contact = {
  id: ContactId.make("ct-ada"),
  name: "Ada Lovelace",
  email: "ada@acme.example",
  phone: null,
  company: "Acme",
  title: "CTO",
  industry: "SaaS",
  segment: "mid-market" as const,
  region: "Europe",
  timezone: "Europe/London",
  leadScore: 80,
  optedOut: false,
  consent: { voice: false, email: true, sms: false }
}
const draftInput: Content.DraftInput = {
  contact,
  channel: "email",
  brief: { goal: "book calls", tone: "friendly", valueProposition: "automate routine outreach", callToAction: "book a 20-minute call" }
}
const transcriptInput: OutcomeAnalysis.AnalysisInput = {
  channel: "voice",
  outcome: "answered",
  transcript: "Contact: What does the pricing look like? Could we set up a demo next week?",
  leadScore: 80
}

const policy: Llm.CallPolicy = { timeout: "1500 millis", maxAttempts: 3, baseDelay: "10 millis", maxDelay: "300 millis" }
const settings = (over: Partial<Model.ModelSettings>): Model.ModelSettings => ({ ...Model.offlineSettings, provider: "auto", policy, ...over })
const endpoint = (url: string) => Option.some({ apiKey: Redacted.make("sk-test-not-a-key"), baseURL: Option.some(url) })
const withLlm = (s: Model.ModelSettings) => Effect.provide(Model.layerWith(s).pipe(Layer.provide(LlmCallLedger.layerMemory)))
const ofModel = (reqs: ReadonlyArray<ProviderServer.Received>, model: string) => reqs.filter((r) => r.body?.model === model)
const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-12)

/** Runs `body` with a loopback server and the LLM service configured against it. */
const scenario = <A, E>(
  reply: (r: ProviderServer.Received, all: ReadonlyArray<ProviderServer.Received>) => ProviderServer.Reply,
  configure: (url: string) => Model.ModelSettings,
  body: (server: ProviderServer.ProviderServer, llm: Llm.LlmService) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const server = yield* ProviderServer.start(reply)
    return yield* Effect.flatMap(Llm.Llm, (llm) => body(server, llm)).pipe(withLlm(configure(server.url)))
  })

const viaOpenAi = (url: string, over: Partial<Model.ModelSettings> = {}) => settings({ openAi: endpoint(`${url}/v1`), ...over })
const viaAnthropic = (url: string, over: Partial<Model.ModelSettings> = {}) => settings({ anthropic: endpoint(url), ...over })

describe("LLM providers on recorded responses", () => {
  it.scopedLive("OpenAI: structured output, usage with cached tokens priced, SDK retries off, ledger replay", () =>
    scenario(() => ({ body: openai.draftCompletion }), viaOpenAi, (server, llm) =>
      Effect.gen(function* () {
        const r = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: "k-openai-1" })
        expect(r.model).toBe("openai:gpt-4.1-mini") // generation → medium tier
        expect(r.value.body).toMatch(/AI assistant/)
        const req = server.requests[0]!
        expect(req.path).toBe("/v1/chat/completions")
        expect(req.body.model).toBe("gpt-4.1-mini")
        expect(req.body.response_format.type).toBe("json_schema")
        expect(req.body.response_format.json_schema.name).toBe("draft")
        expect(req.body.response_format.json_schema.schema.properties.body).toBeDefined()
        expect(req.body.tools).toBeUndefined()
        expect(req.headers["x-stainless-retry-count"]).toBe("0")
        // prompt_tokens (1543) include cached (1024): 519 fresh at $0.40, 1024 cached at $0.10, 87 out at $1.60 per M
        expect(r.cost).toMatchObject({ calls: 1, inputTokens: 1543, cachedInputTokens: 1024, cacheWriteTokens: 0, outputTokens: 87, fallbacks: [] })
        close(r.cost.usd, (519 * 0.4 + 1024 * 0.1 + 87 * 1.6) / 1e6)
        const again = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: "k-openai-1" })
        expect(again.replayed).toBe(true)
        expect(again.value).toEqual(r.value)
        close(again.cost.usd, r.cost.usd)
        expect(server.requests).toHaveLength(1)
      })
    )
  )

  it.scopedLive("OpenAI: a 429 is retried by our policy after retry-after-ms, one request per attempt", () =>
    scenario(
      (req, all) => (ofModel(all, req.body.model).length === 1 ? openai.rateLimited : { body: openai.draftCompletion }),
      viaOpenAi,
      (server, llm) =>
        Effect.gen(function* () {
          const t0 = Date.now()
          const r = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: null })
          expect(r.model).toBe("openai:gpt-4.1-mini")
          expect(server.requests).toHaveLength(2)
          expect(server.requests.map((q) => q.headers["x-stainless-retry-count"])).toEqual(["0", "0"])
          expect(Date.now() - t0).toBeGreaterThanOrEqual(55)
          expect(r.trace.join("\n")).toMatch(/attempt 1: RateLimited \(429\), retry in \d+ ms/)
          expect(r.cost.fallbacks).toEqual([])
        })
    )
  )

  it.scopedLive("OpenAI: timeouts exhaust the retries, then the chain falls back to a cheaper model, stated in trace and cost", () =>
    scenario(
      (req) => (req.body.model === "gpt-4.1-mini" ? { body: openai.draftCompletion, delayMs: 1_000 } : { body: { ...openai.draftCompletion, model: req.body.model } }),
      (url) => viaOpenAi(url, { policy: { ...policy, timeout: "250 millis", maxAttempts: 2 } }),
      (server, llm) =>
        Effect.gen(function* () {
          const r = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: null })
          expect(ofModel(server.requests, "gpt-4.1-mini")).toHaveLength(2) // our two attempts, no SDK retry
          expect(r.model).toBe("openai:gpt-4.1-nano")
          expect(r.cost.fallbacks).toEqual(["openai:gpt-4.1-mini → openai:gpt-4.1-nano (Timeout)"])
          expect(r.trace.join("\n")).toMatch(/gpt-4.1-mini attempt 2: Timeout, giving up/)
        })
    )
  )

  it.scopedLive("circuit breaker: after repeated failures the model is skipped without a request; offline answers last", () =>
    scenario(
      () => openai.serverError,
      (url) => viaOpenAi(url, { policy: { ...policy, maxAttempts: 1 }, breaker: { failureThreshold: 2, cooldown: "1 minute" } }),
      (server, llm) =>
        Effect.gen(function* () {
          const first = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: null })
          expect(first.model).toBe("offline:offline-v1")
          expect(first.cost.fallbacks[0]).toBe("openai:gpt-4.1-mini → openai:gpt-4.1-nano (Unavailable)")
          yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: null })
          const seen = server.requests.length
          const third = yield* llm.run(Content.draftTask, draftInput, { tenant, callKey: null })
          expect(server.requests.length).toBe(seen) // every OpenAI circuit is open now
          expect(third.model).toBe("offline:offline-v1")
          expect(third.trace.filter((t) => t.includes("circuit open, skipped")).length).toBeGreaterThanOrEqual(2)
          expect(third.cost.fallbacks.some((f) => f.endsWith("(circuit open)"))).toBe(true)
        })
    )
  )

  it.scopedLive("Anthropic: output_config json_schema, input tokens exclude cache reads and writes", () =>
    scenario(() => ({ body: anthropic.analysisMessage }), viaAnthropic, (server, llm) =>
      Effect.gen(function* () {
        const r = yield* llm.run(OutcomeAnalysis.transcriptTask, transcriptInput, { tenant, callKey: "k-anthropic-1" })
        expect(r.model).toBe("anthropic:claude-sonnet-4-5") // analysis → large tier
        expect(r.value).toMatchObject({ sentiment: "positive", leadStatus: "converted", buyingSignals: ["pricing", "demo"] })
        const req = server.requests[0]!
        expect(req.path).toBe("/v1/messages")
        expect(req.body.output_config.format.type).toBe("json_schema")
        expect(req.body.tools).toBeUndefined()
        expect(req.headers["x-stainless-retry-count"]).toBe("0")
        // input_tokens 412 + cache read 2048 + cache write 1200 = 3660 input tokens
        expect(r.cost).toMatchObject({ inputTokens: 3660, cachedInputTokens: 2048, cacheWriteTokens: 1200, outputTokens: 96 })
        close(r.cost.usd, (412 * 3 + 2048 * 0.3 + 1200 * 3.75 + 96 * 15) / 1e6)
      })
    )
  )

  it.scopedLive("Anthropic: 529 overloaded and 429 are retried; a 400 is not, and the chain moves on", () =>
    scenario(
      (req, all) => {
        const n = ofModel(all, req.body.model).length
        if (req.body.model === "claude-sonnet-4-5") return n === 1 ? anthropic.overloaded : n === 2 ? anthropic.rateLimited : { body: anthropic.analysisMessage }
        return anthropic.badRequest
      },
      viaAnthropic,
      (server, llm) =>
        Effect.gen(function* () {
          const ok = yield* llm.run(OutcomeAnalysis.transcriptTask, transcriptInput, { tenant, callKey: null })
          expect(ok.model).toBe("anthropic:claude-sonnet-4-5")
          expect(ofModel(server.requests, "claude-sonnet-4-5")).toHaveLength(3)
          expect(ok.trace.join("\n")).toMatch(/Overloaded \(529\)[\s\S]*RateLimited \(429\)/)
          // classification routes to haiku, which answers 400: no retry, straight to the next model
          const cls = yield* llm.run(OutcomeAnalysis.outcomeTask, { ...transcriptInput, transcript: null }, { tenant, callKey: null })
          expect(ofModel(server.requests, "claude-haiku-4-5")).toHaveLength(1)
          expect(cls.cost.fallbacks[0]).toBe("anthropic:claude-haiku-4-5 → anthropic:claude-sonnet-4-5 (BadRequest)")
        })
    )
  )

  it.scopedLive("capability flags: a model without structured outputs is asked through a tool, forced only where allowed", () =>
    Effect.gen(function* () {
      const server = yield* ProviderServer.start((req) =>
        req.path.startsWith("/v1/messages") ? { body: anthropic.analysisToolUse } : { body: openai.draftToolCall }
      )
      const noSchema = (m: ModelCatalog.ModelSpec): ModelCatalog.ModelSpec => ({ ...m, capabilities: { ...m.capabilities, structuredOutput: false } })
      const local = noSchema(ModelCatalog.localModel("llama3.1:8b", "medium"))
      const opus = noSchema(ModelCatalog.hostedModels.find((m) => m.model === "claude-opus-4-1")!)
      const providers = new Map([
        ["offline", OfflineProvider.provider] as const,
        ["openai", OpenAiProvider.make({ apiKey: Redacted.make("x"), baseURL: `${server.url}/v1`, timeoutMs: 2_000 })] as const,
        ["anthropic", AnthropicProvider.make({ apiKey: Redacted.make("x"), baseURL: server.url, timeoutMs: 2_000 })] as const
      ])
      const layer = Llm.layer(policy).pipe(
        Layer.provide(Layer.succeed(LlmProviders, { providers, models: [local, opus, ModelCatalog.offlineModel] })),
        Layer.provide(CircuitBreaker.layer()),
        Layer.provide(LlmCallLedger.layerMemory)
      )
      const llm = yield* Effect.provide(Llm.Llm, layer)
      const d = yield* llm.run(Content.draftTask, { ...draftInput, channel: "voice" }, { tenant, callKey: null })
      expect(d.model).toBe("openai:llama3.1:8b")
      expect(d.value.body).toMatch(/AI assistant/)
      const o = server.requests.find((r) => r.path === "/v1/chat/completions")!.body
      expect(o.response_format).toBeUndefined()
      expect(o.tools[0].function.name).toBe("draft")
      expect(o.tool_choice).toBe("required") // local models: no forced choice
      const a = yield* llm.run(OutcomeAnalysis.transcriptTask, transcriptInput, { tenant, callKey: null })
      expect(a.model).toBe("anthropic:claude-opus-4-1")
      expect(a.value.leadStatus).toBe("nurture")
      const m = server.requests.find((r) => r.path === "/v1/messages")!.body
      expect(m.tool_choice).toEqual({ type: "any" }) // this model rejects a forced tool_choice
      expect(m.temperature).toBeUndefined() // nor a non-default temperature
      expect(m.output_config).toBeUndefined()
    })
  )

  it.scopedLive("OPENAI_BASE_URL with local model names routes every tier to the local server, priced at 0", () =>
    Effect.gen(function* () {
      const server = yield* ProviderServer.start((req) => ({ body: { ...openai.draftCompletion, model: req.body.model } }))
      const env = ConfigProvider.fromMap(
        new Map([
          ["OPENAI_API_KEY", "local"],
          ["OPENAI_BASE_URL", `${server.url}/v1`],
          ["LLM_MODEL_SMALL", "qwen2.5:3b"],
          ["LLM_MODEL_MEDIUM", "llama3.1:8b"],
          ["LLM_MODEL_LARGE", "llama3.1:70b"]
        ])
      )
      const s = yield* Effect.withConfigProvider(Model.config, env)
      const r = yield* Effect.flatMap(Llm.Llm, (llm) => llm.run(Content.draftTask, draftInput, { tenant, callKey: null })).pipe(withLlm(s))
      expect(r.model).toBe("openai:llama3.1:8b")
      expect(server.requests[0]!.body.model).toBe("llama3.1:8b")
      expect(r.cost.usd).toBe(0)
      expect(r.cost.inputTokens).toBe(1543)
    })
  )

  it.live("no key at all: the offline model alone, nothing recorded", () =>
    Effect.gen(function* () {
      const s = yield* Effect.withConfigProvider(Model.config, ConfigProvider.fromMap(new Map()))
      const r = yield* Effect.flatMap(Llm.Llm, (llm) => llm.run(Content.draftTask, draftInput, { tenant, callKey: "k" })).pipe(withLlm(s))
      expect(r.model).toBe("offline:offline-v1")
      expect(r.cost.usd).toBe(0)
      expect(r.cost.inputTokens).toBeGreaterThan(50)
    })
  )
})
