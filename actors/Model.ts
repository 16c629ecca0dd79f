/**
 * Which models the agents use, chosen by configuration, never by `if (test)`: the LLM
 * service (`Model`, an alias of `Llm`) over the providers whose keys are set (OpenAI,
 * OpenAI-compatible local servers via `OPENAI_BASE_URL`, Anthropic), always with the
 * offline model last in every fallback chain; with no key at all, the offline model alone.
 *
 * Environment: `LLM_PROVIDER` (`auto` | `openai` | `anthropic` | `offline`, default auto),
 * `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`,
 * `LLM_MODEL_SMALL|MEDIUM|LARGE` (model names of a local server), `LLM_TIMEOUT_MS` (30000),
 * `LLM_MAX_ATTEMPTS` (3), `LLM_BREAKER_FAILURES` (5), `LLM_BREAKER_COOLDOWN_MS` (30000).
 * A provider's module (and its SDK) is loaded only when the settings use it.
 */
import { Config, Duration, Effect, Layer, Option, type Redacted } from "effect"
import { type LlmCallLedger, layerMemory as ledgerMemory } from "../storage/LlmCallLedger.js"
import * as CircuitBreaker from "./llm/CircuitBreaker.js"
import * as Llm from "./llm/Llm.js"
import { type LlmProvider, LlmProviders } from "./llm/LlmProvider.js"
import * as ModelCatalog from "./llm/ModelCatalog.js"
import * as OfflineProvider from "./llm/OfflineProvider.js"

/** The LLM service the agents use. */
export { Llm as Model } from "./llm/Llm.js"

/** A provider's endpoint. */
export interface Endpoint {
  readonly apiKey: Redacted.Redacted
  readonly baseURL: Option.Option<string>
}

/** Settings of the model stack. */
export interface ModelSettings {
  readonly provider: "auto" | "openai" | "anthropic" | "offline"
  readonly openAi: Option.Option<Endpoint>
  readonly anthropic: Option.Option<Endpoint>
  /** Models of an OpenAI-compatible local server, by tier (used when `OPENAI_BASE_URL` is set). */
  readonly localModels: { readonly small: Option.Option<string>; readonly medium: Option.Option<string>; readonly large: Option.Option<string> }
  readonly policy: Llm.CallPolicy
  readonly breaker: CircuitBreaker.BreakerSettings
}

/** Offline only. */
export const offlineSettings: ModelSettings = {
  provider: "offline",
  openAi: Option.none(),
  anthropic: Option.none(),
  localModels: { small: Option.none(), medium: Option.none(), large: Option.none() },
  policy: Llm.defaultPolicy,
  breaker: CircuitBreaker.defaults
}

const endpoint = (key: string, url: string) =>
  Config.option(
    Config.all({ apiKey: Config.redacted(key), baseURL: Config.option(Config.string(url)) })
  )

/** The settings from the environment. */
export const config: Config.Config<ModelSettings> = Config.all({
  provider: Config.literal("auto", "openai", "anthropic", "offline")("LLM_PROVIDER").pipe(Config.withDefault("auto" as const)),
  openAi: endpoint("OPENAI_API_KEY", "OPENAI_BASE_URL"),
  anthropic: endpoint("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
  localModels: Config.all({
    small: Config.option(Config.string("LLM_MODEL_SMALL")),
    medium: Config.option(Config.string("LLM_MODEL_MEDIUM")),
    large: Config.option(Config.string("LLM_MODEL_LARGE"))
  }),
  timeoutMs: Config.integer("LLM_TIMEOUT_MS").pipe(Config.withDefault(30_000)),
  maxAttempts: Config.integer("LLM_MAX_ATTEMPTS").pipe(Config.withDefault(3)),
  failures: Config.integer("LLM_BREAKER_FAILURES").pipe(Config.withDefault(5)),
  cooldownMs: Config.integer("LLM_BREAKER_COOLDOWN_MS").pipe(Config.withDefault(30_000))
}).pipe(
  Config.map((c) => ({
    provider: c.provider,
    openAi: c.openAi,
    anthropic: c.anthropic,
    localModels: c.localModels,
    policy: { ...Llm.defaultPolicy, timeout: Duration.millis(c.timeoutMs), maxAttempts: c.maxAttempts },
    breaker: { failureThreshold: c.failures, cooldown: Duration.millis(c.cooldownMs) }
  }))
)

const use = (s: ModelSettings, p: "openai" | "anthropic") => s.provider === "auto" || s.provider === p

/** The models and providers the settings enable (the offline model always, last); provider modules load here. */
export const providersOf = (s: ModelSettings, timeoutMs = Duration.toMillis(s.policy.timeout)) =>
  Effect.gen(function* () {
    const providers = new Map<ModelCatalog.Provider, LlmProvider>([["offline", OfflineProvider.provider]])
    const models: Array<ModelCatalog.ModelSpec> = []
    if (use(s, "openai") && Option.isSome(s.openAi)) {
      const e = s.openAi.value
      const OpenAiProvider = yield* Effect.promise(() => import("./llm/OpenAiProvider.js"))
      providers.set("openai", OpenAiProvider.make({ apiKey: e.apiKey, baseURL: Option.getOrUndefined(e.baseURL), timeoutMs }))
      const local = (["small", "medium", "large"] as const).flatMap((tier) =>
        Option.match(s.localModels[tier], { onNone: () => [], onSome: (name) => [ModelCatalog.localModel(name, tier)] })
      )
      models.push(...(Option.isSome(e.baseURL) && local.length > 0 ? local : ModelCatalog.hostedModels.filter((m) => m.provider === "openai")))
    }
    if (use(s, "anthropic") && Option.isSome(s.anthropic)) {
      const e = s.anthropic.value
      const AnthropicProvider = yield* Effect.promise(() => import("./llm/AnthropicProvider.js"))
      providers.set("anthropic", AnthropicProvider.make({ apiKey: e.apiKey, baseURL: Option.getOrUndefined(e.baseURL), timeoutMs }))
      models.push(...ModelCatalog.hostedModels.filter((m) => m.provider === "anthropic"))
    }
    models.push(ModelCatalog.offlineModel)
    return { providers, models }
  })

/** The model stack of the given settings (needs the call ledger). */
export const layerWith = (s: ModelSettings): Layer.Layer<Llm.Llm, never, LlmCallLedger> =>
  Llm.layer(s.policy).pipe(
    Layer.provide(Layer.effect(LlmProviders, providersOf(s))),
    Layer.provide(CircuitBreaker.layer(s.breaker))
  )

/** The model stack configured by the environment (needs the call ledger). */
export const layer = Layer.unwrapEffect(Effect.map(config, layerWith))

/** The offline model alone: deterministic, free, nothing recorded (tests and the default run). */
export const layerOffline: Layer.Layer<Llm.Llm> = layerWith(offlineSettings).pipe(Layer.provide(ledgerMemory))
