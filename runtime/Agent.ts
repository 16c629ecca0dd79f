/**
 * Defining an agent: a stateless worker on a shared work queue. Any node may handle any
 * message, many at once; replies go to the sender's address through the outbox.
 * Long handlers (model calls) keep their message alive with in-progress acks.
 */
import type { Effect } from "effect"
import type { Address, Envelope, Ids, Message } from "../protocols/index.js"
import type { SupervisionPolicy } from "./Supervision.js"

/** What an agent handler sees besides the message. */
export interface AgentContext {
  readonly self: Address.Address
  readonly tenant: Ids.TenantId
  readonly envelope: Envelope.Envelope
  /** Queues a message; published after the handler succeeds, with a deterministic id. */
  readonly send: <A, I>(to: Address.Address, def: Message.MessageType<A, I>, payload: A) => void
  /** Queues a reply to the sender of the message being handled. */
  readonly reply: <A, I>(def: Message.MessageType<A, I>, payload: A) => void
}

/** An agent definition. */
export interface AgentDefinition<R = any> {
  /** Agent name: a subject token, e.g. `content`. */
  readonly name: string
  readonly accepts: ReadonlyArray<Message.MessageType>
  readonly handle: (message: Message.Decoded, ctx: AgentContext) => Effect.Effect<void, unknown, R>
  /** Messages handled at once per node. Default 64. */
  readonly concurrency?: number
  readonly supervision?: SupervisionPolicy
}

/** Defines an agent. */
export const make = <R>(definition: AgentDefinition<R>): AgentDefinition<R> => definition
