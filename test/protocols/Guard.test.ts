/**
 * `Guard.compile` answers as `Schema.is` does, checked by property: for values a schema's
 * arbitrary generates (valid), for the same values broken at one random place (a key
 * removed, a leaf replaced by another kind of value), and for arbitrary JSON-like values.
 * Run over every CRM message payload, the actor states, the envelope, and small schemas
 * that exercise each kind of AST node the compiler handles (tuples with optional and rest
 * elements, records with refined keys, discriminated unions, recursion, enums, brands).
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Envelope } from "../../protocols/Envelope.js"
import * as Guard from "../../protocols/Guard.js"
import { broken, synthetic } from "../fixtures/SchemaCases.js"

/**
 * `Schema.is`'s answer; where it throws (a union reads a discriminator with `String()`, which
 * throws for an object whose `toString` is not a function), the guard's is taken: a guard
 * only has to answer where the schema does, and never throw.
 */
const isOrThrown = (is: (u: unknown) => boolean, v: unknown): boolean | "thrown" => {
  try {
    return is(v)
  } catch {
    return "thrown"
  }
}

const agree = (name: string, schema: Schema.Schema<any, any, never>, runs: number) => {
  const guard = Guard.compile(schema.ast)
  expect(guard, `${name} compiles`).toBeDefined()
  const is = Schema.is(Schema.typeSchema(schema))
  const valid = Arbitrary.make(Schema.typeSchema(schema))
  fc.assert(
    fc.property(valid, (v) => guard!(v) === true && is(v) === true),
    { numRuns: runs }
  )
  const agrees = (v: unknown) => {
    const want = isOrThrown(is, v)
    const got = guard!(v)
    return want === "thrown" || got === want
  }
  fc.assert(fc.property(valid.chain(broken), agrees), { numRuns: runs * 3 })
  fc.assert(fc.property(fc.oneof(fc.jsonValue(), fc.anything()), agrees), { numRuns: runs })
}

describe("Guard", () => {
  it("agrees with Schema.is on every kind of node it compiles", () => {
    for (const [name, schema] of Object.entries(synthetic)) agree(name, schema as Schema.Schema<any, any, never>, 200)
  })

  it("agrees with Schema.is on every CRM message payload, the envelope and the actor states", () => {
    for (const def of CrmApp.registry.types.values()) agree(def.type, def.payload, 60)
    agree("envelope", Envelope, 100)
    for (const actor of CrmApp.nodeOptions.actors) agree(`${actor.type} state`, actor.state, 60)
  })

  it("leaves to Schema.is what it does not compile", () => {
    expect(Guard.compile(Schema.TemplateLiteral("a", Schema.String).ast)).toBeUndefined()
    // a transformation is checked on its type side: a Date field whose encoded side is a string
    const date = Guard.compile(Schema.Struct({ at: Schema.Date }).ast)!
    expect([date({ at: new Date(0) }), date({ at: "1970-01-01T00:00:00.000Z" })]).toEqual([true, false])
    const n = Guard.compile(Schema.Struct({ n: Schema.NumberFromString }).ast)!
    expect([n({ n: 1 }), n({ n: "1" })]).toEqual([true, false])
  })
})
