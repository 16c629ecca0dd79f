/**
 * Encoders that skip `Schema.encode` when it would hand back the value unchanged.
 *
 * Most wire payloads and actor states are plain JSON shapes (structs, literals, strings,
 * numbers, arrays, unions, refinements, brands) whose optional fields carry decoding
 * defaults (`Schema.optionalWith(..., { default })`). Encoding such a value returns it as
 * it is, yet walks it through Effect's transformations: 50-80 µs for a contact actor's
 * state, done at every commit, against under 10 µs for the `JSON.stringify` that follows;
 * the value is still checked against the schema's type, by a compiled guard (`Guard`: about
 * 1.4 µs for that state, 9 µs with `Schema.is`). Whether a schema encodes as the identity is
 * decided once, from its AST, conservatively: anything not known to be the identity (a
 * `Date`, an `Option`, a renamed key, a number from a string, any declaration or custom
 * transformation) keeps the full encoder. Decoding (what comes from outside, or from storage
 * written by older versions) always validates, through `Decoder`.
 */
import { Option, Schema, SchemaAST } from "effect"
import * as Guard from "./Guard.js"

const sentinel = { sentinel: true }

/** A property transformation that hands an encoded value back as it is (e.g. a decoding default). */
const identityProperty = (t: SchemaAST.PropertySignatureTransformation): boolean => {
  if (t.from !== t.to) return false
  try {
    const out = t.encode(Option.some(sentinel))
    return Option.isSome(out) && out.value === sentinel && Option.isNone(t.encode(Option.none()))
  } catch {
    return false
  }
}

/** Whether encoding with `ast` returns every valid value unchanged (conservative: false when unsure). */
export const isIdentity = (ast: SchemaAST.AST, seen: Set<SchemaAST.AST> = new Set()): boolean => {
  if (seen.has(ast)) return true // a recursive reference: decided where it started
  seen.add(ast)
  switch (ast._tag) {
    case "Literal":
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
    case "TemplateLiteral":
    case "Enums":
    case "UnknownKeyword":
    case "AnyKeyword":
      return true
    case "Refinement":
      return isIdentity(ast.from, seen)
    case "Suspend":
      return isIdentity(ast.f(), seen)
    case "Union":
      return ast.types.every((t) => isIdentity(t, seen))
    case "TupleType":
      return ast.elements.every((e) => isIdentity(e.type, seen)) && ast.rest.every((r) => isIdentity(r.type, seen))
    case "TypeLiteral":
      return ast.propertySignatures.every((p) => isIdentity(p.type, seen)) && ast.indexSignatures.every((i) => isIdentity(i.type, seen))
    case "Transformation":
      return (
        ast.transformation._tag === "TypeLiteralTransformation" &&
        ast.transformation.propertySignatureTransformations.every(identityProperty) &&
        isIdentity(ast.from, seen) &&
        isIdentity(ast.to, seen)
      )
    default:
      return false
  }
}

/**
 * The encoder of a schema, with `Schema.encodeSync`'s results and errors. When encoding is
 * the identity (see `isIdentity`) a valid value is returned as it is after a check against
 * the schema's type side (refinements included), by a guard compiled from the schema
 * (`Guard`; `Schema.is` where it compiles none); an invalid one still goes through
 * `Schema.encodeSync`, for its error.
 */
export const encoderOf = <A, I>(schema: Schema.Schema<A, I, never>): ((a: A) => I) => {
  const encode = Schema.encodeSync(schema)
  if (!isIdentity(schema.ast)) return encode
  // a guard compiled from the AST answers as `Schema.is` does, without running the parser
  const valid = Guard.compile(schema.ast) ?? Schema.is(Schema.typeSchema(schema))
  return (a) => (valid(a) ? (a as unknown as I) : encode(a))
}
