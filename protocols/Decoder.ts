/**
 * Decoders compiled from a schema's AST: `Schema.decodeUnknownEither`'s value without its
 * parser, for what a node decodes most (every envelope and payload it receives, every
 * actor state it loads).
 *
 * Effect's parser builds an `Either` per node and an issue per rejected union member (a
 * `NullOr` field holding null), through shared, megamorphic code: decoding what a node
 * received was about 4% of its CPU in a campaign. A decoder compiled here is a tree of
 * closures that builds only the decoded value, as the parser builds it: a struct keeps its
 * declared keys in their declared order (excess keys dropped), an optional key that is
 * absent stays absent, a missing required key is decoded from `undefined` (the parser is
 * not `exact` when decoding), a struct's property transformations (decoding defaults)
 * and `Schema.transform`'s functions run as the parser runs them, refinements their own
 * filters, arrays and tuples are rebuilt.
 *
 * Declared types (`Date`, `Option`…) decode with their own parse functions. A union is
 * compiled only where the member that decodes a value cannot depend on the order members
 * are tried in (no member has a literal discriminator, so the parser tries them in
 * declared order; or no two members can both decode one value to different results).
 * Anything else (template literals) compiles to `undefined`, and `either` then keeps the
 * schema's own decoder. A value the compiled decoder refuses (also one whose
 * transformation or declared type decodes asynchronously) is decoded again by the schema's
 * decoder, which gives the error (and would give the value, were the two to disagree).
 */
import { Effect, Either, Option, type ParseResult, Schema, SchemaAST } from "effect"
import { all, indexes, suspended, tupleShape } from "./internal/AstCompile.js"

/** What a compiled decoder returns for a value it refuses. */
export const FAIL: unique symbol = Symbol.for("nexus/Decoder/fail")

/** A compiled decoder: the decoded value, or `FAIL`. */
export type Decode = (u: unknown) => unknown

const hasOwn = Object.prototype.hasOwnProperty

// the parser hands refinement filters its default options when decoding without any
const parseOptions = SchemaAST.defaultParseOption

type Kind = "null" | "undefined" | "string" | "number" | "boolean" | "bigint" | "symbol" | "record" | "array" | "function"
const ALL: ReadonlySet<Kind> = new Set<Kind>(["null", "undefined", "string", "number", "boolean", "bigint", "symbol", "record", "array", "function"])

const kindOfValue = (u: unknown): Kind =>
  u === null ? "null" : Array.isArray(u) ? "array" : typeof u === "object" ? "record" : (typeof u as Kind)

/** The kinds of input a node can decode (a superset is safe). */
const kindsOf = (ast: SchemaAST.AST, seen: Set<SchemaAST.AST> = new Set()): ReadonlySet<Kind> => {
  if (seen.has(ast)) return ALL
  seen.add(ast)
  switch (ast._tag) {
    case "Literal":
      return new Set([kindOfValue(ast.literal)])
    case "UndefinedKeyword":
    case "VoidKeyword":
      return new Set(["undefined"])
    case "NeverKeyword":
      return new Set()
    case "StringKeyword":
    case "TemplateLiteral":
      return new Set(["string"])
    case "NumberKeyword":
      return new Set(["number"])
    case "BooleanKeyword":
      return new Set(["boolean"])
    case "BigIntKeyword":
      return new Set(["bigint"])
    case "SymbolKeyword":
    case "UniqueSymbol":
      return new Set(["symbol"])
    case "Enums":
      return new Set(ast.enums.map(([, v]) => kindOfValue(v)))
    case "TupleType":
      return new Set(["array"])
    case "TypeLiteral":
      return ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0
        ? new Set([...ALL].filter((k) => k !== "null" && k !== "undefined"))
        : new Set(["record"])
    case "Refinement":
      return kindsOf(ast.from, seen)
    case "Transformation":
      return kindsOf(ast.from, seen)
    case "Suspend":
      return kindsOf(ast.f(), seen)
    case "Union": {
      const out = new Set<Kind>()
      for (const t of ast.types) for (const k of kindsOf(t, seen)) out.add(k)
      return out
    }
    default:
      return ALL
  }
}

/** The literal discriminators the parser's search tree reads off a union member (as it does when decoding). */
const literalsOf = (ast: SchemaAST.AST): ReadonlyArray<readonly [PropertyKey, SchemaAST.LiteralValue]> => {
  switch (ast._tag) {
    case "TypeLiteral": {
      const out: Array<readonly [PropertyKey, SchemaAST.LiteralValue]> = []
      for (const ps of ast.propertySignatures) {
        const type = SchemaAST.encodedAST(ps.type)
        if (SchemaAST.isLiteral(type) && !ps.isOptional) out.push([ps.name, type.literal])
      }
      return out
    }
    case "TupleType": {
      const out: Array<readonly [PropertyKey, SchemaAST.LiteralValue]> = []
      ast.elements.forEach((e, i) => {
        const type = SchemaAST.encodedAST(e.type)
        if (SchemaAST.isLiteral(type) && !e.isOptional) out.push([i, type.literal])
      })
      return out
    }
    case "Refinement":
    case "Transformation":
      return literalsOf(ast.from)
    case "Suspend":
      return literalsOf(ast.f())
    default:
      return []
  }
}

/** Whether decoding with `ast` hands back its input as it is whenever it succeeds. */
const preserves = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case "Literal":
    case "UniqueSymbol":
    case "UndefinedKeyword":
    case "VoidKeyword":
    case "NeverKeyword":
    case "UnknownKeyword":
    case "AnyKeyword":
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "BigIntKeyword":
    case "SymbolKeyword":
    case "ObjectKeyword":
    case "Enums":
      return true
    case "Refinement":
      return preserves(ast.from)
    case "Union":
      return ast.types.every(preserves)
    default:
      return false
  }
}

/** No value is decoded by both `a` and `b` to different results. */
const independent = (a: SchemaAST.AST, b: SchemaAST.AST): boolean => {
  if (preserves(a) && preserves(b)) return true
  const kb = kindsOf(b)
  if (![...kindsOf(a)].some((k) => kb.has(k))) return true
  // a required literal at the same key, with different values
  const lb = literalsOf(b)
  return literalsOf(a).some(([key, value]) => lb.some(([k, v]) => k === key && v !== value))
}

const primitive = (test: (u: unknown) => boolean): Decode => (u) => (test(u) ? u : FAIL)

const go = (ast: SchemaAST.AST, seen: Map<SchemaAST.AST, { compiled: Decode | undefined }>): Decode | undefined => {
  const compile = (a: SchemaAST.AST) => go(a, seen)
  switch (ast._tag) {
    case "Literal": {
      const literal = ast.literal
      return primitive((u) => u === literal)
    }
    case "UniqueSymbol": {
      const symbol = ast.symbol
      return primitive((u) => u === symbol)
    }
    case "UndefinedKeyword":
      return primitive((u) => u === undefined)
    case "NeverKeyword":
      return () => FAIL
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return (u) => u
    case "StringKeyword":
      return primitive((u) => typeof u === "string")
    case "NumberKeyword":
      return primitive((u) => typeof u === "number")
    case "BooleanKeyword":
      return primitive((u) => typeof u === "boolean")
    case "BigIntKeyword":
      return primitive((u) => typeof u === "bigint")
    case "SymbolKeyword":
      return primitive((u) => typeof u === "symbol")
    case "ObjectKeyword":
      return primitive((u) => (typeof u === "object" && u !== null) || typeof u === "function")
    case "Enums": {
      const values = ast.enums.map(([, value]) => value)
      return primitive((u) => values.some((v) => v === u))
    }
    case "Refinement": {
      const from = compile(ast.from)
      if (from === undefined) return undefined
      const refinement = ast
      return (u) => {
        const a = from(u)
        return a === FAIL || Option.isSome(refinement.filter(a, parseOptions, refinement)) ? FAIL : a
      }
    }
    case "Union": {
      const members = all(ast.types, compile)
      if (members === undefined) return undefined
      // the parser tries members in declared order unless some have literal discriminators;
      // then the order is its own, and the result must not depend on it
      if (ast.types.some((t) => literalsOf(t).length > 0)) {
        for (let i = 0; i < ast.types.length; i++) {
          for (let j = i + 1; j < ast.types.length; j++) if (!independent(ast.types[i]!, ast.types[j]!)) return undefined
        }
      }
      return (u) => {
        for (let i = 0; i < members.length; i++) {
          const r = members[i]!(u)
          if (r !== FAIL) return r
        }
        return FAIL
      }
    }
    case "TupleType": {
      const shape = tupleShape(ast, compile)
      if (shape === undefined) return undefined
      const { elements, head, tail, required } = shape
      return (u) => {
        if (!Array.isArray(u)) return FAIL
        const len = u.length
        if (len < required) return FAIL
        if (head === undefined && len > elements.length) return FAIL
        const out: Array<unknown> = []
        let i = 0
        for (; i < elements.length; i++) {
          if (len < i + 1) {
            if (elements[i]!.optional) continue
            return FAIL
          }
          const v = elements[i]!.compiled(u[i])
          if (v === FAIL) return FAIL
          out.push(v)
        }
        if (head !== undefined) {
          for (; i < len - tail.length; i++) {
            const v = head(u[i])
            if (v === FAIL) return FAIL
            out.push(v)
          }
          for (let j = 0; j < tail.length; j++) {
            if (len < i + j + 1) continue
            const v = tail[j]!(u[i + j])
            if (v === FAIL) return FAIL
            out.push(v)
          }
        }
        return out
      }
    }
    case "TypeLiteral": {
      if (ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0) return primitive((u) => u !== null && u !== undefined)
      const decoders = all(
        ast.propertySignatures.map((ps) => ps.type),
        compile
      )
      const signatures = indexes(ast, compile)
      if (decoders === undefined || signatures === undefined) return undefined
      const properties = ast.propertySignatures.map((ps, i) => ({ name: ps.name, optional: ps.isOptional, decode: decoders[i]! }))
      const declared = new Set<PropertyKey>(properties.map((p) => p.name))
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return FAIL
        const o = u as Record<PropertyKey, unknown>
        const out: Record<PropertyKey, unknown> = {}
        for (let i = 0; i < properties.length; i++) {
          const p = properties[i]!
          if (p.optional && !hasOwn.call(o, p.name)) continue
          const v = p.decode(o[p.name])
          if (v === FAIL) return FAIL
          out[p.name] = v
        }
        for (let i = 0; i < signatures.length; i++) {
          const x = signatures[i]!
          for (const key of x.keys(o)) {
            if (x.parameter(key) === FAIL) continue
            const v = x.value(o[key])
            if (v === FAIL) return FAIL
            if (!declared.has(key)) out[key] = v
          }
        }
        return out
      }
    }
    case "Transformation": {
      const from = compile(ast.from)
      const to = compile(ast.to)
      if (from === undefined || to === undefined) return undefined
      const transformation = ast.transformation
      if (transformation._tag === "FinalTransformation") {
        // a transformation's own decoding (`Schema.transform`: a row into a domain value),
        // called as the parser calls it; an asynchronous or failed one is left to the schema
        const self = ast
        return (u) => {
          const a = from(u)
          if (a === FAIL) return FAIL
          const r = transformation.decode(a, parseOptions, self, u)
          return Either.isEither(r) && Either.isRight(r) ? to(r.right) : FAIL
        }
      }
      if (transformation._tag !== "TypeLiteralTransformation") return undefined
      // a struct's property transformations (decoding defaults, optional keys): the encoded
      // struct, each property's own decoding, then the type-side struct, as the parser runs them
      const properties = transformation.propertySignatureTransformations
      return (u) => {
        const decoded = from(u)
        if (decoded === FAIL) return FAIL
        if (typeof decoded !== "object" || decoded === null) return FAIL
        const a = (decoded === u ? Object.assign({}, decoded) : decoded) as Record<PropertyKey, unknown>
        for (const p of properties) {
          const o = p.decode(hasOwn.call(a, p.from) ? Option.some(a[p.from]) : Option.none())
          delete a[p.from]
          if (Option.isSome(o)) a[p.to] = o.value
        }
        return to(a)
      }
    }
    case "Declaration": {
      // a declared type (`Date`, `Option`…) decodes with its own parse function, as the
      // parser calls it; an asynchronous answer is left to the schema
      const parse = ast.decodeUnknown(...ast.typeParameters)
      const self = ast
      return (u) => {
        const r = parse(u, parseOptions, self)
        return Either.isEither(r) && Either.isRight(r) ? r.right : FAIL
      }
    }
    case "Suspend":
      return suspended(ast, seen, compile)
    default:
      return undefined
  }
}

/** The decoder of `ast` (from its encoded side to its type side), or `undefined` when not compiled. */
export const compile = (ast: SchemaAST.AST): Decode | undefined => go(ast, new Map())

/**
 * `Schema.decodeUnknownEither(schema)`, through the compiled decoder where there is one: a
 * value it refuses goes through the schema's decoder, for the error.
 */
export const either = <A, I>(schema: Schema.Schema<A, I, never>): ((u: unknown) => Either.Either<A, ParseResult.ParseError>) => {
  const full = Schema.decodeUnknownEither(schema)
  const compiled = compile(schema.ast)
  if (compiled === undefined) return full
  return (u) => {
    const a = compiled(u)
    return a === FAIL ? full(u) : Either.right(a as A)
  }
}

/** `Schema.decodeUnknown(schema)` as an effect, through the compiled decoder where there is one. */
export const effect = <A, I>(schema: Schema.Schema<A, I, never>): ((u: unknown) => Effect.Effect<A, ParseResult.ParseError>) => {
  const full = Schema.decodeUnknown(schema)
  const compiled = compile(schema.ast)
  if (compiled === undefined) return full
  return (u) => {
    const a = compiled(u)
    return a === FAIL ? full(u) : Effect.succeed(a as A)
  }
}

/** `Schema.decodeUnknownSync(schema)`, through the compiled decoder where there is one (errors thrown as its). */
export const sync = <A, I>(schema: Schema.Schema<A, I, never>): ((u: unknown) => A) => {
  const full = Schema.decodeUnknownSync(schema)
  const compiled = compile(schema.ast)
  if (compiled === undefined) return full
  return (u) => {
    const a = compiled(u)
    return a === FAIL ? full(u) : (a as A)
  }
}
