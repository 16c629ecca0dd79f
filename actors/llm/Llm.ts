/**
 * The LLM service the agents call: `run(task, input, { tenant, callKey })`.
 *
 * 1. A call key given and a non-deterministic model in play: the call ledger is read
 *    first; a recorded answer is returned (with its recorded cost) and nothing is paid.
 * 2. The router gives the chain of models for the task kind (routed tier, cheaper tiers,
 *    offline last). A model whose circuit is open is skipped; each candidate is called
 *    with our timeout and retry policy (SDK retries are off), honouring `retry-after`.
 * 3. The answer is decoded with the task's `Schema`; a failure or an unusable answer moves
 *    on to the next model. Every fallback is stated in the result's trace, its cost and the
 *    span, and logged.
 * 4. The answer, usage, money and trace are recorded under the call key.
 */
import { Context, Duration, Effect, FiberRef, Layer, Option, Random, Schema } from "effect"
import type { Cost } from "../../protocols/Cost.js"
import type { TenantId } from "../../protocols/Ids.js"
import * as Trace from "../../protocols/Trace.js"
import type { StorageError } from "../../storage/Errors.js"
import { LlmCallLedger } from "../../storage/LlmCallLedger.js"
import { CircuitBreaker } from "./CircuitBreaker.js"
import * as LlmError from "./LlmError.js"
import { LlmProviders, type OutputMode, type ProviderRequest, type ProviderResponse } from "./LlmProvider.js"
import type { ModelSpec } from "./ModelCatalog.js"
import * as Router from "./Router.js"
import * as Task from "./Task.js"
import * as Usage from "./Usage.js"

/** Our call policy. */
export interface CallPolicy {
  /** Per-attempt timeout. Default 30 s. */
  readonly timeout: Duration.DurationInput
  /** Attempts per model (first included). Default 3. */
  readonly maxAttempts: number
  /** First retry delay; doubles. Default 500 ms. */
  readonly baseDelay: Duration.DurationInput
  /** Cap of one delay, `retry-after` included. Default 20 s. */
  readonly maxDelay: Duration.DurationInput
}

/** Default policy. */
export const defaultPolicy: CallPolicy = { timeout: "30 seconds", maxAttempts: 3, baseDelay: "500 millis", maxDelay: "20 seconds" }

/** Options of one run. */
export interface RunOptions {
  readonly tenant: TenantId
  /** Deterministic idempotency key of the call (null: not recorded). */
  readonly callKey: string | null
  /**
   * Most the call may cost (the caller's remaining budget). Models whose worst case
   * (every output token, and input counted at 2 characters a token) exceeds it are
   * skipped; if none fits, the run fails with `OverBudget`. Absent: no limit.
   */
  readonly maxUsd?: number | undefined
}

/**
 * The spend cap of the model calls made in a region of code (e.g. an agent handling one
 * request with an allowance): `Effect.locally(spendCap, usd)(...)`. `RunOptions.maxUsd`
 * takes precedence; undefined: no limit.
 */
export const spendCap: FiberRef.FiberRef<number | undefined> = FiberRef.unsafeMake<number | undefined>(undefined)

/** Runs `effect` with its model calls capped to `usd` in all (undefined: unchanged). */
export const capped = (usd: number | undefined) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  usd === undefined ? effect : Effect.locally(effect, spendCap, usd)

/** A model's worst-case cost for a request: the input at 2 characters a token, every output token. */
export const worstCaseUsd = (modelId: string, inputChars: number, maxTokens: number): number =>
  Usage.costOf(modelId, { inputTokens: Math.ceil(inputChars / 2), cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: maxTokens }).usd

/** A decoded answer with what it cost and how it was obtained. */
export interface Generated<A> {
  readonly value: A
  readonly cost: Cost
  /** `provider:model` that answered. */
  readonly model: string
  /** Routing, retries and fallbacks, in order. */
  readonly trace: ReadonlyArray<string>
  /** True when the answer came from the call ledger (nothing paid this time). */
  readonly replayed: boolean
}

/** The LLM service. */
export interface LlmService {
  readonly models: ReadonlyArray<ModelSpec>
  readonly run: <I, A>(task: Task.Task<I, A>, input: I, options: RunOptions) => Effect.Effect<Generated<A>, LlmError.LlmError | StorageError>
}

/** The LLM service tag. */
export class Llm extends Context.Tag("nexus/llm/Llm")<Llm, LlmService>() {}

/** The output mode a model's capability flags call for. */
export const modeOf = (m: ModelSpec): OutputMode =>
  m.capabilities.structuredOutput ? "structured" : m.capabilities.tools ? "tool" : "json-prompt"

const stripFences = (text: string) => text.trim().replace(/^```(?:json)?\s*/i, "").replace(/\s*```$/, "")

const answerOf = (m: ModelSpec, mode: OutputMode, r: ProviderResponse): Effect.Effect<unknown, LlmError.LlmError> => {
  if (r.stopReason === "length" || r.stopReason === "max_tokens") {
    return Effect.fail(LlmError.make(m.provider, m.model, "Incomplete", `answer cut at the token limit (${r.stopReason})`))
  }
  if (mode === "tool" && r.toolArguments !== undefined) return Effect.succeed(r.toolArguments)
  if (r.text === null) return Effect.fail(LlmError.make(m.provider, m.model, "Decode", "no answer in the response"))
  return Effect.try({
    try: () => JSON.parse(stripFences(r.text!)) as unknown,
    catch: () => LlmError.make(m.provider, m.model, "Decode", `answer is not JSON: ${r.text!.slice(0, 120)}`)
  })
}

/** Builds the service over providers, a breaker and the call ledger. */
export const make = (policy: CallPolicy = defaultPolicy) =>
  Effect.gen(function* () {
    const { providers, models } = yield* LlmProviders
    const breaker = yield* CircuitBreaker
    const ledger = yield* LlmCallLedger
    const timeoutMs = Duration.toMillis(policy.timeout)

    const callWithRetry = (m: ModelSpec, req: ProviderRequest, trace: Array<string>) => {
      const provider = providers.get(m.provider)!
      const once = provider.inProcess
        ? provider.complete(req)
        : provider.complete(req).pipe(
            Effect.timeoutFail({
              duration: timeoutMs + 1_000,
              onTimeout: () => LlmError.make(m.provider, m.model, "Timeout", `no answer within ${timeoutMs} ms`)
            })
          )
      const loop = (attempt: number): Effect.Effect<ProviderResponse, LlmError.LlmError> =>
        once.pipe(
          Effect.catchAll((e) => {
            if (!e.retryable || attempt >= policy.maxAttempts) {
              trace.push(`${m.id} attempt ${attempt}: ${e.reason}${e.status ? ` (${e.status})` : ""}, giving up`)
              return Effect.fail(e)
            }
            const backoff = Duration.toMillis(policy.baseDelay) * 2 ** (attempt - 1)
            return Random.nextRange(0.8, 1.2).pipe(
              Effect.flatMap((jitter) => {
                const delay = Math.min(Duration.toMillis(policy.maxDelay), Math.max(e.retryAfterMs ?? 0, backoff * jitter))
                trace.push(`${m.id} attempt ${attempt}: ${e.reason}${e.status ? ` (${e.status})` : ""}, retry in ${Math.round(delay)} ms`)
                return Effect.sleep(Duration.millis(delay)).pipe(Effect.zipRight(loop(attempt + 1)))
              })
            )
          })
        )
      return loop(1)
    }

    const run = <I, A>(task: Task.Task<I, A>, input: I, options: RunOptions) =>
      Effect.gen(function* () {
        const routed = Router.chain(models, task.kind)
        const recorded = options.callKey !== null && routed.some((m) => !m.capabilities.deterministic)
        const decode = Schema.decodeUnknown(task.output)
        if (recorded) {
          const hit = yield* ledger.get(options.tenant, options.callKey!)
          if (Option.isSome(hit)) {
            const value = yield* decode(hit.value.output).pipe(Effect.option)
            if (Option.isSome(value)) {
              const usage = hit.value.usage as Usage.Usage
              return {
                value: value.value,
                cost: { ...Usage.costOf(`${hit.value.provider}:${hit.value.model}`, usage), usd: hit.value.costUsd },
                model: `${hit.value.provider}:${hit.value.model}`,
                trace: [`replayed from the call ledger (${options.callKey})`],
                replayed: true
              } satisfies Generated<A>
            }
          }
        }
        const { schema, strict, chars } = Task.jsonSchemaOf(task)
        const prompt = task.prompt(input)
        const trace: Array<string> = [`route ${task.purpose} (${task.kind}): ${routed.map((m) => m.id).join(" → ")}`]
        let chain = routed
        const maxUsd = options.maxUsd ?? (yield* FiberRef.get(spendCap))
        if (maxUsd !== undefined) {
          const inputChars = task.system.length + prompt.length + chars
          const fits = routed.filter((m) => worstCaseUsd(m.id, inputChars, task.maxTokens ?? 1024) <= maxUsd)
          if (fits.length < routed.length) {
            trace.push(`budget $${maxUsd.toFixed(6)}: ${routed.filter((m) => !fits.includes(m)).map((m) => m.id).join(", ")} could cost more, skipped`)
          }
          if (fits.length === 0) {
            const m = routed[0]!
            return yield* Effect.fail(LlmError.make(m.provider, m.model, "OverBudget", `no model's worst case fits $${maxUsd} for ${task.purpose}`))
          }
          chain = fits
        }
        const fallbacks: Array<string> = []
        let last: LlmError.LlmError | undefined
        for (const [i, m] of chain.entries()) {
          const next = chain[i + 1]
          if (!(yield* breaker.permit(m.id))) {
            trace.push(`${m.id}: circuit open, skipped`)
            if (next) fallbacks.push(`${m.id} → ${next.id} (circuit open)`)
            continue
          }
          const mode = modeOf(m)
          const req: ProviderRequest = {
            model: m,
            system: task.system,
            prompt,
            output: { name: task.purpose.replace(/[^A-Za-z0-9_-]/g, "_"), schema, strict, chars },
            mode,
            maxTokens: task.maxTokens ?? 1024,
            temperature: task.temperature ?? 0.2,
            timeoutMs,
            purpose: task.purpose,
            input,
            offline: (i) => Task.encodeOutput(task, task.offline(i as I))
          }
          const answer = yield* callWithRetry(m, req, trace).pipe(
            Effect.tapBoth({ onFailure: () => breaker.onFailure(m.id), onSuccess: () => breaker.onSuccess(m.id) }),
            Effect.flatMap((r) =>
              answerOf(m, mode, r).pipe(
                Effect.flatMap((json) =>
                  decode(json).pipe(
                    Effect.mapError((e) => LlmError.make(m.provider, m.model, "Decode", `answer does not match ${task.purpose}: ${e.message}`))
                  )
                ),
                Effect.map((value) => ({ value, json: Task.encodeOutput(task, value), response: r }))
              )
            ),
            Effect.either
          )
          if (answer._tag === "Left") {
            last = answer.left
            trace.push(`${m.id}: ${answer.left.reason}: ${answer.left.message}`)
            if (next) fallbacks.push(`${m.id} → ${next.id} (${answer.left.reason})`)
            continue
          }
          const { value, json, response } = answer.right
          const cost = Usage.costOf(m.id, response.usage, fallbacks)
          trace.push(`answered by ${m.id} (${mode}), $${cost.usd.toFixed(6)}`)
          if (fallbacks.length > 0) yield* Effect.logWarning(`llm ${task.purpose}: fell back: ${fallbacks.join("; ")}`)
          yield* Trace.annotate({ "llm.model": m.id, "llm.usd": cost.usd, "llm.fallbacks": fallbacks.join("; ") })
          if (recorded) {
            const stored = yield* ledger.record({
              tenantId: options.tenant,
              callKey: options.callKey!,
              task: task.purpose,
              provider: m.provider,
              model: m.model,
              output: json,
              usage: response.usage,
              costUsd: cost.usd,
              trace
            })
            if (stored.duplicate) {
              // a concurrent run recorded first: its answer is the one
              const original = yield* decode(stored.entry.output).pipe(Effect.orElseSucceed(() => value))
              return { value: original, cost, model: m.id, trace, replayed: true } satisfies Generated<A>
            }
          }
          return { value, cost, model: m.id, trace, replayed: false } satisfies Generated<A>
        }
        return yield* Effect.fail(
          LlmError.make("router", task.purpose, "NoModel", `no model answered ${task.purpose}: ${last?.message ?? "every circuit open"}`, {
            cause: last
          })
        )
      }).pipe(Trace.span("Llm.run", { attributes: { "llm.task": task.purpose }, captureStackTrace: false }))

    return { models, run } satisfies LlmService
  })

/** The service as a layer. */
export const layer = (policy: CallPolicy = defaultPolicy): Layer.Layer<Llm, never, LlmProviders | CircuitBreaker | LlmCallLedger> =>
  Layer.effect(Llm, make(policy))
