/**
 * Embeddings: the offline hashed n-gram embedding is deterministic, unit length and puts
 * texts that share words closer than unrelated ones; the OpenAI layer, pointed by
 * `OPENAI_BASE_URL` at a local stand-in server, sends the model and dimensions, batches, and
 * maps failures to typed, correctly retryable errors. `NEXUS_EMBEDDINGS` picks the layer.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import * as Embeddings from "../../storage/Embeddings.js"

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0)
const withEnv = (env: Record<string, string>) => <A, E, R>(layer: Layer.Layer<A, E, R>) =>
  layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))

/** A stand-in for the embeddings endpoint: records requests, answers `status` with vectors of `dim`. */
const fakeOpenAI = (status: number) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; requests: Array<{ path: string; auth: string; body: any }>; close: () => void }>((resume) => {
      const requests: Array<{ path: string; auth: string; body: any }> = []
      const server = createServer((req: IncomingMessage, res) => {
        let raw = ""
        req.on("data", (c) => (raw += c))
        req.on("end", () => {
          const body = JSON.parse(raw)
          requests.push({ path: req.url ?? "", auth: req.headers.authorization ?? "", body })
          res.writeHead(status, { "content-type": "application/json" })
          if (status !== 200) return res.end(JSON.stringify({ error: { message: "nope", type: "invalid_request_error" } }))
          const data = (body.input as Array<string>).map((text, index) => ({
            object: "embedding", index, embedding: Array.from({ length: body.dimensions }, (_, i) => ((text.length + i) % 7) - 3)
          }))
          res.end(JSON.stringify({ object: "list", data: data.reverse(), model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } }))
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, requests, close: () => server.close() }))
      )
    }),
    (s) => Effect.sync(s.close)
  )

describe("Embeddings", () => {
  it.effect("offline-hashed-ngrams-v1 is deterministic, unit length and closer for related texts", () =>
    Effect.gen(function* () {
      const e = yield* Embeddings.Embeddings
      expect([e.model, e.dimension]).toEqual([Embeddings.HASHED_MODEL, 256])
      const [a, a2, b, c] = yield* e.embed([
        "Ava Smith, CTO at Blue Software, SaaS enterprise",
        "Ava Smith, CTO at Blue Software, SaaS enterprise",
        "Ava Smyth, CTO of Blue Software Inc, enterprise SaaS",
        "Invoice overdue for the warehouse forklift rental"
      ])
      expect(a).toEqual(a2)
      expect(cosine(a!, a!)).toBeCloseTo(1, 5)
      expect(cosine(a!, b!)).toBeGreaterThan(0.6)
      expect(cosine(a!, c!)).toBeLessThan(0.3)
      expect(Array.from((yield* e.embed([""]))[0]!).every((x) => x === 0)).toBe(true)
    }).pipe(Effect.provide(withEnv({})(Embeddings.layer))))

  it.scoped("the OpenAI layer honours OPENAI_BASE_URL, sends model and dimensions, batches and keeps order", () =>
    Effect.gen(function* () {
      const server = yield* fakeOpenAI(200)
      const env = withEnv({
        NEXUS_EMBEDDINGS: "openai", OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: server.url,
        NEXUS_EMBEDDING_DIMENSIONS: "8", NEXUS_EMBEDDING_BATCH: "2"
      })
      const vectors = yield* Effect.flatMap(Embeddings.Embeddings, (e) => {
        expect([e.model, e.dimension]).toEqual(["text-embedding-3-small", 8])
        return e.embed(["a", "bb", "ccc"])
      }).pipe(Effect.provide(env(Embeddings.layer)))
      expect(server.requests.map((r) => [r.path, r.auth, r.body.model, r.body.dimensions, r.body.input])).toEqual([
        ["/v1/embeddings", "Bearer sk-test", "text-embedding-3-small", 8, ["a", "bb"]],
        ["/v1/embeddings", "Bearer sk-test", "text-embedding-3-small", 8, ["ccc"]]
      ])
      expect(vectors.length).toBe(3)
      vectors.forEach((v) => expect(cosine(v, v)).toBeCloseTo(1, 5))
      // answers came back in reverse order: the layer restores input order by index
      const want = (text: string) => Embeddings.normalize(Float32Array.from({ length: 8 }, (_, i) => ((text.length + i) % 7) - 3))
      expect(vectors[1]).toEqual(want("bb"))
    }))

  it.scoped("a refused request is a non-retryable Invalid error", () =>
    Effect.gen(function* () {
      const server = yield* fakeOpenAI(400)
      const error = yield* Effect.flatMap(Embeddings.Embeddings, (e) => e.embed(["x"])).pipe(
        Effect.provide(withEnv({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: server.url })(Embeddings.layerOpenAI)),
        Effect.flip
      )
      expect(error._tag).toBe("StorageError")
      expect(error._tag === "StorageError" && [error.reason, error.retryable]).toEqual(["Invalid", false])
      expect(server.requests.length).toBe(1)
    }))
})
