/**
 * Text embeddings for the vector store. Two layers:
 *
 * - `layerOpenAI`: OpenAI `text-embedding-3-small` (or another model) through the `openai`
 *   SDK, `OPENAI_API_KEY` and `OPENAI_BASE_URL` (any OpenAI-compatible server), batched.
 * - `layerHashed`: **offline-hashed-ngrams-v1**, a deterministic embedding for tests and the
 *   demo. Not a language model: words and character trigrams are hashed into a fixed number
 *   of signed buckets and the vector is L2-normalised, so texts that share words and
 *   spellings are close, and the same text always gives the same vector.
 *
 * `layer` picks one from `NEXUS_EMBEDDINGS` (`offline`, the default, or `openai`).
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import OpenAI from "openai"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"

/** What the knowledge store asks of an embedding model. */
export interface EmbeddingsShape {
  /** Model name, recorded with every stored vector. */
  readonly model: string
  /** Length of every vector. */
  readonly dimension: number
  /** One unit-length vector per text, in order. */
  readonly embed: (texts: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Float32Array>, StorageError>
}

/** The embeddings service. */
export class Embeddings extends Context.Tag("nexus/storage/Embeddings")<Embeddings, EmbeddingsShape>() {}

/** Name of the offline embedding. */
export const HASHED_MODEL = "offline-hashed-ngrams-v1"

/** FNV-1a 32-bit with a seed. */
const fnv = (s: string, seed: number): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Scales a vector to unit length in place (a zero vector stays zero); returns it. */
export const normalize = (v: Float32Array): Float32Array => {
  let sum = 0
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!
  const norm = Math.sqrt(sum)
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm
  return v
}

/** The offline-hashed-ngrams-v1 vector of one text, of length `dimension`. */
export const hashedEmbedding = (text: string, dimension: number): Float32Array => {
  const v = new Float32Array(dimension)
  const words = text.normalize("NFKD").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []
  const add = (feature: string, weight: number) => {
    const h = fnv(feature, 0)
    v[h % dimension]! += (fnv(feature, 0x9e3779b9) & 1) === 0 ? weight : -weight
  }
  for (const w of words) {
    add(`w:${w}`, 1)
    const padded = `^${w}$`
    for (let i = 0; i + 3 <= padded.length; i++) add(`c:${padded.slice(i, i + 3)}`, 0.5)
  }
  for (let i = 0; i + 1 < words.length; i++) add(`b:${words[i]} ${words[i + 1]}`, 0.5)
  return normalize(v)
}

/** The offline embedding (`offline-hashed-ngrams-v1`) with `dimension` buckets (default 256). */
export const layerHashed = (dimension = 256): Layer.Layer<Embeddings> =>
  Layer.succeed(Embeddings, {
    model: HASHED_MODEL,
    dimension,
    embed: (texts) => Effect.sync(() => texts.map((t) => hashedEmbedding(t, dimension)))
  })

/** Settings of the OpenAI embeddings. */
export interface OpenAISettings {
  /** `OPENAI_API_KEY`. */
  readonly apiKey: Redacted.Redacted
  /** `OPENAI_BASE_URL`; absent: the SDK's default endpoint. */
  readonly baseUrl: Option.Option<string>
  /** `NEXUS_EMBEDDING_MODEL`. Default `text-embedding-3-small`. */
  readonly model: string
  /** `NEXUS_EMBEDDING_DIMENSIONS`. Default 1536 (the model's native size). */
  readonly dimension: number
  /** Texts per request. Default 256. */
  readonly batchSize: number
}

/** Reads the OpenAI settings from the environment. */
export const openAIConfig: Config.Config<OpenAISettings> = Config.all({
  apiKey: Config.redacted("OPENAI_API_KEY").pipe(Config.withDescription("OpenAI API key")),
  baseUrl: Config.option(Config.string("OPENAI_BASE_URL").pipe(Config.withDescription("OpenAI-compatible base URL"))),
  model: Config.string("NEXUS_EMBEDDING_MODEL").pipe(Config.withDefault("text-embedding-3-small")),
  dimension: Config.integer("NEXUS_EMBEDDING_DIMENSIONS").pipe(
    Config.withDefault(1536),
    Config.validate({ message: "must be between 1 and 3072", validation: (n) => n >= 1 && n <= 3072 })
  ),
  batchSize: Config.integer("NEXUS_EMBEDDING_BATCH").pipe(Config.withDefault(256))
})

// Connection failures, rate limits and server errors may pass; anything else will not.
const openAIError = (cause: unknown): StorageError => {
  const status = (cause as { status?: unknown }).status
  const message = cause instanceof Error ? cause.message : String(cause)
  if (cause instanceof OpenAI.APIConnectionError || status === 429 || (typeof status === "number" && status >= 500)) {
    return Errors.make("Embeddings.openai", "Unavailable", `Embeddings.openai: ${message}`, cause)
  }
  return Errors.make("Embeddings.openai", typeof status === "number" ? "Invalid" : "Unknown", `Embeddings.openai: ${message}`, cause)
}

/** OpenAI embeddings with the given settings. */
export const layerOpenAIWith = (settings: OpenAISettings): Layer.Layer<Embeddings> =>
  Layer.sync(Embeddings, () => {
    const client = new OpenAI({
      apiKey: Redacted.value(settings.apiKey),
      ...(Option.isSome(settings.baseUrl) ? { baseURL: settings.baseUrl.value } : {}),
      maxRetries: 2
    })
    const batch = (texts: ReadonlyArray<string>) =>
      Effect.tryPromise({
        try: (signal) =>
          client.embeddings.create(
            { model: settings.model, input: [...texts], dimensions: settings.dimension, encoding_format: "float" },
            { signal }
          ),
        catch: openAIError
      }).pipe(
        Effect.flatMap((response) => {
          const ordered = [...response.data].sort((a, b) => a.index - b.index)
          if (ordered.length !== texts.length || ordered.some((d) => d.embedding.length !== settings.dimension)) {
            return Effect.fail(Errors.invalid("Embeddings.openai", `expected ${texts.length} vectors of ${settings.dimension}`))
          }
          return Effect.succeed(ordered.map((d) => normalize(Float32Array.from(d.embedding))))
        })
      )
    return {
      model: settings.model,
      dimension: settings.dimension,
      embed: Effect.fn("Embeddings.openai.embed")(function* (texts: ReadonlyArray<string>) {
        const out: Array<Float32Array> = []
        for (let i = 0; i < texts.length; i += settings.batchSize) {
          out.push(...(yield* batch(texts.slice(i, i + settings.batchSize))))
        }
        return out
      })
    }
  })

/** OpenAI embeddings configured by the environment. */
export const layerOpenAI = Layer.unwrapEffect(Effect.map(openAIConfig, layerOpenAIWith))

/** The embeddings `NEXUS_EMBEDDINGS` names: `offline` (default) or `openai`. */
export const layer = Layer.unwrapEffect(
  Effect.map(
    Config.literal("offline", "openai")("NEXUS_EMBEDDINGS").pipe(
      Config.withDefault("offline" as const),
      Config.withDescription("Embedding model: offline (hashed n-grams) or openai")
    ),
    (choice) => (choice === "openai" ? layerOpenAI : layerHashed())
  )
)
