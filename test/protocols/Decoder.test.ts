/**
 * `Decoder` decodes as `Schema.decodeUnknownEither` does, checked by property: the same
 * success or failure, and on success the same value, key order included, for encoded
 * values (generated on the encoded side, with decoding defaults left out and optional keys
 * absent, and encoded from generated values),
 * for the same values broken at one random place, and for arbitrary JSON-like values. Run
 * over every CRM message payload, the envelope, the actor states, and small schemas that
 * exercise each kind of AST node, including unions whose result could depend on the order
 * their members are tried in (those are left to the schema's own decoder).
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, Schema } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as Decoder from "../../protocols/Decoder.js"
import { Envelope } from "../../protocols/Envelope.js"
import { asynchronous, broken, synthetic } from "../fixtures/SchemaCases.js"

/** Deep equality that also compares the order of keys and prototypes, dates by time, and tells -0, NaN and undefined apart. */
const same = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime())
  if (Array.isArray(a) !== Array.isArray(b)) return false
  // a decoded `__proto__` key sets the prototype, in the parser's output as in ours: alike, not identical
  const [pa, pb] = [Object.getPrototypeOf(a), Object.getPrototypeOf(b)]
  if (pa !== pb && !same(pa, pb)) return false
  const ka = Reflect.ownKeys(a)
  const kb = Reflect.ownKeys(b)
  return (
    ka.length === kb.length &&
    ka.every((k, i) => k === kb[i] && same((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k]))
  )
}

const agree = (name: string, schema: Schema.Schema<any, any, never>, runs: number, strict = true) => {
  const compiled = Decoder.compile(schema.ast)
  const full = Schema.decodeUnknownEither(schema)
  const viaEither = Decoder.either(schema)
  const check = (u: unknown) => {
    let expected: Either.Either<unknown, unknown>
    try {
      expected = full(u)
    } catch {
      // the schema's parser throws (a union reads a discriminator with `String()`, which
      // throws for an object whose `toString` is not a function): nothing to agree with
      return true
    }
    if (compiled !== undefined) {
      // a compiled decoder accepts exactly what the schema accepts (not strict: it may refuse
      // more, for the schema to decode), and decodes it the same
      const got = compiled(u)
      if (got === Decoder.FAIL ? strict && Either.isRight(expected) : !(Either.isRight(expected) && same(got, expected.right))) return false
    }
    const e = viaEither(u)
    return Either.isRight(e) ? Either.isRight(expected) && same(e.right, expected.right) : Either.isLeft(expected)
  }
  // encoded values: generated on the encoded side (optional keys absent, defaults left
  // out) where the encoded side has an arbitrary, and encoded from generated values
  const encodedSide = (() => {
    try {
      return [Arbitrary.make(Schema.encodedSchema(schema))]
    } catch {
      return []
    }
  })()
  const encoded = fc.oneof(...encodedSide, Arbitrary.make(schema).map(Schema.encodeSync(schema)))
  fc.assert(fc.property(encoded, check), { numRuns: runs })
  fc.assert(fc.property(encoded.chain(broken), check), { numRuns: runs * 3 })
  fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), check), { numRuns: runs })
  return compiled
}

describe("Decoder", () => {
  it("decodes as the schema does on every kind of node; order-dependent unions keep the schema's decoder", () => {
    for (const [name, schema] of Object.entries(synthetic)) {
      const compiled = agree(name, schema as Schema.Schema<any, any, never>, 200)
      expect(compiled === undefined, `${name} left to the schema's decoder`).toBe(["tagged", "taggedAndUntagged", "untaggedFirst"].includes(name))
    }
    // the parser tries a member with a matching tag before an untagged one declared earlier
    expect(Decoder.either(synthetic.untaggedFirst)({ _tag: "t", x: "a" })).toEqual(Either.right({ _tag: "t", x: "a" }))
    // the first of two members that both decode a value wins, as in the parser
    expect(Decoder.either(synthetic.overlapping)({ a: "x", b: 1 })).toEqual(Either.right({ a: "x" }))
    expect(Decoder.either(synthetic.nestedDefaults)({ list: [{}] })).toEqual(Either.right({ inner: { k: 1, s: "d" }, list: [{ flag: false }] }))
    expect(Decoder.either(synthetic.transformed)([{ first_name: "a", score: "2" }])).toEqual(Either.right([{ name: "a", score: 2 }]))
    // a transformation that decodes asynchronously: every value goes to the schema's decoder
    agree("asynchronous", asynchronous, 100, false)
    expect(Decoder.compile(asynchronous.ast)!({ s: " x " })).toBe(Decoder.FAIL)
    expect(Effect.runSync(Decoder.effect(asynchronous)({ s: " x " }))).toEqual({ s: "x" })
  })

  it("decodes every CRM message payload, the envelope and the actor states as the schemas do, all compiled", () => {
    for (const def of CrmApp.registry.types.values()) expect(agree(def.type, def.payload, 60), def.type).toBeDefined()
    expect(agree("envelope", Envelope, 100)).toBeDefined()
    for (const actor of CrmApp.nodeOptions.actors) expect(agree(`${actor.type} state`, actor.state, 60), actor.type).toBeDefined()
  })

  it("leaves template literals to the schema and reports the schema's error", () => {
    expect(Decoder.compile(Schema.Struct({ id: Schema.TemplateLiteral("c-", Schema.Number) }).ast)).toBeUndefined()
    const decode = Decoder.either(Schema.Struct({ n: Schema.Int }))
    const left = decode({ n: 1.5 })
    expect(Either.isLeft(left) && left.left._tag).toBe("ParseError")
    expect(() => Decoder.sync(Schema.Struct({ n: Schema.Int }))({ n: "1" })).toThrowError(expect.objectContaining({ _tag: "ParseError" }))
  })
})
