/**
 * What `Guard` and `Decoder` share in compiling a schema's AST into closures: compiling a
 * list of nodes (all or nothing), the shape of a tuple as the parser reads it, index
 * signatures with the keys they look at, and the cell through which a recursive
 * (suspended) node refers to its own compiled form.
 */
import type { SchemaAST } from "effect"

/** Compiles every node, or gives up (`undefined`) if one does not compile. */
export const all = <T>(asts: ReadonlyArray<SchemaAST.AST>, compile: (ast: SchemaAST.AST) => T | undefined): Array<T> | undefined => {
  const out: Array<T> = []
  for (const ast of asts) {
    const c = compile(ast)
    if (c === undefined) return undefined
    out.push(c)
  }
  return out
}

/** A tuple (or array) as the parser reads it: leading elements, a rest element and what follows it. */
export interface TupleShape<T> {
  readonly elements: ReadonlyArray<{ readonly compiled: T; readonly optional: boolean }>
  readonly head: T | undefined
  readonly tail: ReadonlyArray<T>
  /** Elements a value must have (required leading ones and those after the rest), as the parser counts them. */
  readonly required: number
}

/** The compiled shape of a tuple, or `undefined` if a part does not compile. */
export const tupleShape = <T>(ast: SchemaAST.TupleType, compile: (ast: SchemaAST.AST) => T | undefined): TupleShape<T> | undefined => {
  const elements = all(
    ast.elements.map((e) => e.type),
    compile
  )
  const rest = all(
    ast.rest.map((r) => r.type),
    compile
  )
  if (elements === undefined || rest === undefined) return undefined
  const [head, ...tail] = rest
  return {
    elements: elements.map((compiled, i) => ({ compiled, optional: ast.elements[i]!.isOptional })),
    head,
    tail,
    required: ast.elements.filter((e) => !e.isOptional).length + tail.length
  }
}

/** Which own keys of a value an index signature with this parameter looks at (as the parser picks them). */
export const keysOf = (parameter: SchemaAST.AST): ((u: object) => ReadonlyArray<PropertyKey>) | undefined => {
  switch (parameter._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return Object.keys
    case "SymbolKeyword":
      return Object.getOwnPropertySymbols
    case "Refinement":
      return keysOf(parameter.from)
    default:
      return undefined
  }
}

/** An index signature compiled: the keys it looks at, and the compiled forms of its parameter and value. */
export interface CompiledIndex<T> {
  readonly keys: (u: object) => ReadonlyArray<PropertyKey>
  readonly parameter: T
  readonly value: T
}

/** The compiled index signatures of a struct or record, or `undefined` if one does not compile. */
export const indexes = <T>(ast: SchemaAST.TypeLiteral, compile: (ast: SchemaAST.AST) => T | undefined): Array<CompiledIndex<T>> | undefined => {
  const out: Array<CompiledIndex<T>> = []
  for (const is of ast.indexSignatures) {
    const keys = keysOf(is.parameter)
    const parameter = compile(is.parameter)
    const value = compile(is.type)
    if (keys === undefined || parameter === undefined || value === undefined) return undefined
    out.push({ keys, parameter, value })
  }
  return out
}

/**
 * A suspended node compiled once: a reference to it met while compiling it (recursion)
 * calls the compiled form through a cell filled when compiling is done.
 */
export const suspended = <F extends (u: unknown) => unknown>(
  ast: SchemaAST.Suspend,
  seen: Map<SchemaAST.AST, { compiled: F | undefined }>,
  compile: (ast: SchemaAST.AST) => F | undefined
): F | undefined => {
  const known = seen.get(ast)
  if (known !== undefined) return ((u: unknown) => known.compiled!(u)) as F
  const cell: { compiled: F | undefined } = { compiled: undefined }
  seen.set(ast, cell)
  cell.compiled = compile(ast.f())
  return cell.compiled === undefined ? undefined : (((u: unknown) => cell.compiled!(u)) as F)
}
