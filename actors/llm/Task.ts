/**
 * A model task: what it is for (its kind, which the router maps to a model size), its
 * output as an Effect `Schema` (sent to providers as a JSON schema, and used to decode the
 * answer), its instructions and prompt, and its deterministic offline answer, so the
 * offline model answers every task through the same pipeline as a hosted one.
 */
import { JSONSchema, Schema } from "effect"
import type { JsonSchema } from "./LlmProvider.js"
import type { TaskKind } from "./Router.js"

/** A task from input `I` to output `A`. */
export interface Task<I, A> {
  /** Stable name, e.g. `draft`; part of call keys and the ledger row. */
  readonly purpose: string
  readonly kind: TaskKind
  readonly output: Schema.Schema<A, any, never>
  readonly system: string
  readonly prompt: (input: I) => string
  /** The offline model's answer (deterministic in the input). */
  readonly offline: (input: I) => A
  /** Output token cap. Default 1,024. */
  readonly maxTokens?: number
  /** Sampling temperature where the model accepts one. Default 0.2. */
  readonly temperature?: number
}

/** Defines a task (identity function that fixes the types). */
export const make = <I, A>(task: Task<I, A>): Task<I, A> => task

const schemas = new WeakMap<object, { readonly schema: JsonSchema; readonly strict: boolean; readonly chars: number }>()

// keywords OpenAI's strict mode accepts besides structure
const strictKeywords = new Set([
  "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
  "description", "title", "$ref", "$defs", "pattern", "minimum", "maximum", "minItems", "maxItems", "format"
])

/** Whether a JSON schema fits OpenAI's strict mode: every property required, no extra properties. */
export const isStrictCompatible = (s: unknown): boolean => {
  if (Array.isArray(s)) return s.every(isStrictCompatible)
  if (typeof s !== "object" || s === null) return true
  const o = s as Record<string, unknown>
  if (Object.keys(o).some((k) => !strictKeywords.has(k) && k !== "$schema")) return false
  if (o.type === "object" || o.properties !== undefined) {
    const props = Object.keys((o.properties ?? {}) as object)
    const required = new Set((o.required ?? []) as Array<string>)
    if (o.additionalProperties !== false || props.some((p) => !required.has(p))) return false
  }
  return Object.entries(o).every(([k, v]) =>
    k === "properties" || k === "$defs" ? Object.values(v as object).every(isStrictCompatible) : isStrictCompatible(v)
  )
}

/**
 * The JSON schema of a task's output (computed once per task), whether it is
 * strict-compatible, and the length of its JSON text (what a provider is sent).
 */
export const jsonSchemaOf = (task: Task<any, any>): { readonly schema: JsonSchema; readonly strict: boolean; readonly chars: number } => {
  const cached = schemas.get(task)
  if (cached) return cached
  const { $schema: _, ...schema } = JSONSchema.make(task.output) as unknown as Record<string, unknown>
  const result = { schema, strict: isStrictCompatible(schema), chars: JSON.stringify(schema).length }
  schemas.set(task, result)
  return result
}

/** Encodes an output value to its JSON form. */
export const encodeOutput = <A>(task: Task<any, A>, value: A): unknown => Schema.encodeSync(task.output)(value)
