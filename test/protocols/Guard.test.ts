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

interface Category {
  readonly name: string
  readonly children: ReadonlyArray<Category>
}
const Category: Schema.Schema<Category> = Schema.Struct({
  name: Schema.String,
  children: Schema.Array(Schema.suspend((): Schema.Schema<Category> => Category))
})

enum Color {
  Red = "red",
  Blue = 2
}

const synthetic = {
  optionalAndRest: Schema.Tuple([Schema.String, Schema.optionalElement(Schema.Number)], Schema.Boolean),
  postRest: Schema.Tuple([Schema.String], Schema.Boolean, Schema.Literal(1)),
  plainTuple: Schema.Tuple(Schema.String, Schema.Int),
  refinedKeys: Schema.Record({ key: Schema.String.pipe(Schema.startsWith("k")), value: Schema.Number.pipe(Schema.positive()) }),
  recordAndFields: Schema.Struct({ id: Schema.String }, Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Number) })),
  tagged: Schema.Union(
    Schema.TaggedStruct("a", { n: Schema.Int }),
    Schema.TaggedStruct("b", { s: Schema.NullOr(Schema.String) }),
    Schema.Struct({ other: Schema.Boolean })
  ),
  optionals: Schema.Struct({
    exact: Schema.optionalWith(Schema.String, { exact: true }),
    loose: Schema.optional(Schema.Number),
    withDefault: Schema.optionalWith(Schema.Array(Schema.Literal("x", "y")), { default: () => [] }),
    nullable: Schema.NullOr(Schema.Struct({ at: Schema.Number.pipe(Schema.between(0, 10)) }))
  }),
  recursive: Category,
  enums: Schema.Struct({ color: Schema.Enums(Color), brand: Schema.String.pipe(Schema.brand("Id")), big: Schema.BigIntFromSelf, sym: Schema.UniqueSymbolFromSelf(Symbol.for("s")) }),
  emptyStruct: Schema.Struct({}),
  unknownAndObject: Schema.Struct({ u: Schema.Unknown, o: Schema.Object })
}

/** A deep copy of arrays and plain objects (leaves, symbols included, as they are). */
const clone = (x: unknown): unknown =>
  Array.isArray(x)
    ? x.map(clone)
    : typeof x === "object" && x !== null
      ? Object.fromEntries(Reflect.ownKeys(x).map((k) => [k, clone((x as Record<PropertyKey, unknown>)[k])]))
      : x

/** `v` with one place changed: a key dropped, or a value replaced by one of another kind. */
const broken = (v: unknown): fc.Arbitrary<unknown> => {
  const paths: Array<Array<PropertyKey>> = [[]]
  const walk = (x: unknown, path: Array<PropertyKey>, depth: number) => {
    if (depth > 6 || typeof x !== "object" || x === null) return
    for (const k of Array.isArray(x) ? x.keys() : Reflect.ownKeys(x)) {
      paths.push([...path, k])
      walk((x as Record<PropertyKey, unknown>)[k], [...path, k], depth + 1)
    }
  }
  walk(v, [], 0)
  const replacements = fc.oneof(
    fc.constantFrom<unknown>(null, undefined, 0, -1, 1.5, Number.NaN, "", "x", true, [], {}, [1, "a"], { a: 1 }),
    fc.jsonValue()
  )
  return fc.tuple(fc.constantFrom(...paths), fc.boolean(), replacements).map(([path, drop, replacement]) => {
    const copy = clone(v)
    if (path.length === 0) return replacement
    let parent = copy as Record<PropertyKey, unknown>
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<PropertyKey, unknown>
    const last = path[path.length - 1]!
    if (drop && !Array.isArray(parent)) delete parent[last]
    else parent[last] = replacement
    return copy
  })
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
  fc.assert(
    fc.property(valid.chain(broken), (v) => guard!(v) === is(v)),
    { numRuns: runs * 3 }
  )
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (v) => guard!(v) === is(v)),
    { numRuns: runs }
  )
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
    expect(Guard.compile(Schema.Struct({ at: Schema.DateFromSelf }).ast)).toBeUndefined()
    expect(Guard.compile(Schema.TemplateLiteral("a", Schema.String).ast)).toBeUndefined()
    // a transformation is checked on its type side: a Date field whose encoded side is a string
    expect(Guard.compile(Schema.Struct({ at: Schema.Date }).ast)).toBeUndefined()
    const n = Guard.compile(Schema.Struct({ n: Schema.NumberFromString }).ast)!
    expect([n({ n: 1 }), n({ n: "1" })]).toEqual([true, false])
  })
})
