/**
 * Type guards compiled from a schema's AST: `Schema.is`'s answer without its parser.
 *
 * `Schema.is` runs the schema's parser and keeps its verdict: every member a union tries
 * and rejects allocates an issue and an `Either` on the way (a `NullOr` field holding
 * null, a literal matched by the third member), and every step passes through the
 * parser's shared, megamorphic code. Checking what a node sends (every payload and actor
 * state, see `Encoding`) that way cost about 5% of a node's CPU in a campaign. A guard
 * compiled here is a tree of closures, one per AST node, that allocates nothing and
 * answers the same: required keys must be own properties (`exact`, as `Schema.is` sets
 * it), excess keys are allowed, index signatures check the keys their parameter accepts,
 * a union is any member, a refinement runs its own filter (brands, integers, bounds).
 *
 * Compiled: literals, keywords, enums, refinements, structs and records, arrays and
 * tuples, unions, suspensions, and declared types (`Date`, `Option`…, through their own
 * parse functions); for a schema with a template literal `compile` answers `undefined` and
 * the caller keeps `Schema.is`.
 */
import { Either, Option, SchemaAST } from "effect"
import { all, indexes, suspended, tupleShape } from "./internal/AstCompile.js"

/** A compiled type guard. */
export type Guard = (u: unknown) => boolean

// `Schema.is` parses with `exact: true`; refinement filters receive the same options
const parseOptions: SchemaAST.ParseOptions = { exact: true }

const hasOwn = Object.prototype.hasOwnProperty

const always: Guard = () => true
const never: Guard = () => false

const go = (ast: SchemaAST.AST, seen: Map<SchemaAST.AST, { compiled: Guard | undefined }>): Guard | undefined => {
  const compile = (a: SchemaAST.AST) => go(a, seen)
  switch (ast._tag) {
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "UniqueSymbol": {
      const symbol = ast.symbol
      return (u) => u === symbol
    }
    case "UndefinedKeyword":
      return (u) => u === undefined
    case "NeverKeyword":
      return never
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return always
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "BigIntKeyword":
      return (u) => typeof u === "bigint"
    case "SymbolKeyword":
      return (u) => typeof u === "symbol"
    case "ObjectKeyword":
      return (u) => (typeof u === "object" && u !== null) || typeof u === "function"
    case "Enums": {
      const values = ast.enums.map(([, value]) => value)
      return (u) => values.some((v) => v === u)
    }
    case "Refinement": {
      const from = compile(ast.from)
      if (from === undefined) return undefined
      const refinement = ast
      return (u) => from(u) && Option.isNone(refinement.filter(u, parseOptions, refinement))
    }
    case "Union": {
      const members = all(ast.types, compile)
      if (members === undefined) return undefined
      return (u) => {
        for (let i = 0; i < members.length; i++) if (members[i]!(u)) return true
        return false
      }
    }
    case "TupleType": {
      const shape = tupleShape(ast, compile)
      if (shape === undefined) return undefined
      const { elements, head, tail, required } = shape
      return (u) => {
        if (!Array.isArray(u)) return false
        const len = u.length
        if (len < required) return false
        if (head === undefined && len > elements.length) return false
        let i = 0
        for (; i < elements.length; i++) {
          if (len < i + 1) {
            if (elements[i]!.optional) continue
            return false
          }
          if (!elements[i]!.compiled(u[i])) return false
        }
        if (head !== undefined) {
          for (; i < len - tail.length; i++) if (!head(u[i])) return false
          for (let j = 0; j < tail.length; j++) {
            if (len < i + j + 1) continue
            if (!tail[j]!(u[i + j])) return false
          }
        }
        return true
      }
    }
    case "TypeLiteral": {
      if (ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0) return (u) => u !== null && u !== undefined
      const guards = all(
        ast.propertySignatures.map((ps) => ps.type),
        compile
      )
      if (guards === undefined) return undefined
      const properties = ast.propertySignatures.map((ps, i) => ({ name: ps.name, optional: ps.isOptional, guard: guards[i]! }))
      const signatures = indexes(ast, compile)
      if (signatures === undefined) return undefined
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return false
        const o = u as Record<PropertyKey, unknown>
        for (let i = 0; i < properties.length; i++) {
          const p = properties[i]!
          if (!hasOwn.call(o, p.name)) {
            if (p.optional) continue
            return false
          }
          if (!p.guard(o[p.name])) return false
        }
        for (let i = 0; i < signatures.length; i++) {
          const x = signatures[i]!
          for (const key of x.keys(o)) if (x.parameter(key) && !x.value(o[key])) return false
        }
        return true
      }
    }
    case "Declaration": {
      // a declared type (`Date`, `Option`…) checks with its own parse function, over the type
      // sides of its parameters (as `Schema.is` runs it); an asynchronous answer is a no
      const parse = ast.decodeUnknown(...ast.typeParameters.map(SchemaAST.typeAST))
      const self = ast
      return (u) => {
        const r = parse(u, parseOptions, self)
        return Either.isEither(r) && Either.isRight(r)
      }
    }
    case "Transformation":
      // the type side is the transformation's target (as `SchemaAST.typeAST` takes it)
      return compile(ast.to)
    case "Suspend":
      // a recursive schema: its guard refers to itself through a cell, filled once compiled
      return suspended(ast, seen, compile)
    default:
      // a template literal: not compiled
      return undefined
  }
}

/**
 * The guard of the type side of `ast` (what `Schema.is` checks), or `undefined` when the
 * schema holds a kind of node not compiled here.
 */
export const compile = (ast: SchemaAST.AST): Guard | undefined => go(ast, new Map())
