/**
 * Addresses name the sender and receiver of every envelope:
 * `actor:<type>:<id>` (a stateful actor), `agent:<name>` (a stateless agent work queue),
 * `topic:<type>:<id>` (an event stream), `ext:<name>` (an external system or the gateway).
 */
import { Schema } from "effect"

const pattern = /^(actor:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}|agent:[A-Za-z0-9_-]{1,64}|topic:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}|ext:[A-Za-z0-9_-]{1,64})$/

/** A validated address string. */
export const Address = Schema.String.pipe(Schema.pattern(pattern), Schema.brand("Address"))
export type Address = typeof Address.Type

/** The parsed form of an address. */
export type ParsedAddress =
  | { readonly kind: "actor"; readonly type: string; readonly id: string }
  | { readonly kind: "agent"; readonly name: string }
  | { readonly kind: "topic"; readonly type: string; readonly id: string }
  | { readonly kind: "ext"; readonly name: string }

/** The address of a stateful actor. */
export const actor = (type: string, id: string): Address => `actor:${type}:${id}` as Address
/** The address of a stateless agent's work queue. */
export const agent = (name: string): Address => `agent:${name}` as Address
/** The address of an event topic (e.g. one campaign's progress). */
export const topic = (type: string, id: string): Address => `topic:${type}:${id}` as Address
/** The address of an external system. */
export const ext = (name: string): Address => `ext:${name}` as Address

/** Splits an address into its parts; the input must already be a valid `Address`. */
export const parse = (address: Address): ParsedAddress => {
  const [kind, a, b] = address.split(":") as [string, string, string | undefined]
  switch (kind) {
    case "actor":
      return { kind, type: a, id: b! }
    case "topic":
      return { kind, type: a, id: b! }
    case "agent":
      return { kind, name: a }
    default:
      return { kind: "ext", name: a }
  }
}
