/**
 * Defining an actor: a type name, the message types it accepts, a state schema with its
 * initial value, and a handler `(state, message, context) => Effect<state>`. The runtime
 * gives each actor id a single activation, feeds it one message at a time in order,
 * persists its state in KV (revision-checked) and publishes what it sent only after the
 * handler succeeded. Handlers decide; outside effects go through services with
 * idempotency keys.
 */
import type { Effect, Schema } from "effect"
import type { Address, Envelope, Ids, Message } from "../protocols/index.js"
import type { SupervisionPolicy } from "./Supervision.js"

/** What a handler sees besides state and message. */
export interface ActorContext {
  /** The actor's own address. */
  readonly self: Address.Address
  /** The actor id. */
  readonly id: string
  readonly tenant: Ids.TenantId
  /** The envelope being handled. */
  readonly envelope: Envelope.Envelope
  /** Queues a message; published after the handler succeeds, with a deterministic id. */
  readonly send: <A, I>(to: Address.Address, def: Message.MessageType<A, I>, payload: A) => void
}

/** An actor definition. */
export interface ActorDefinition<S = any, R = any> {
  /** Actor type: a subject token, e.g. `order`. */
  readonly type: string
  /** Message types this actor accepts; others are dead-lettered as unexpected. */
  readonly accepts: ReadonlyArray<Message.MessageType>
  /** JSON schema of the state (persisted in KV). */
  readonly state: Schema.Schema<S, any, never>
  /** State of an actor that has never handled a message. */
  readonly initial: (id: string, tenant: Ids.TenantId) => S
  /** Handles one message; fails to trigger supervision. */
  readonly handle: (state: S, message: Message.Decoded, ctx: ActorContext) => Effect.Effect<S, unknown, R>
  /**
   * Called when a message was dead-lettered after its retries: the actor may record the
   * failure and tell its parent (escalation). Default: state unchanged.
   */
  readonly onDeadLetter?: (state: S, message: Message.Decoded, error: unknown, ctx: ActorContext) => Effect.Effect<S, unknown, R>
  /** True when the actor has nothing more to do: it is passivated at once. Default never. */
  readonly isIdle?: (state: S) => boolean
  /** Retry policy. Default `Supervision.defaultPolicy`. */
  readonly supervision?: SupervisionPolicy
}

/** Defines an actor (identity function that fixes the types). */
export const make = <S, R>(definition: ActorDefinition<S, R>): ActorDefinition<S, R> => definition

/** The services an actor definition needs. */
export type Requirements<A> = A extends ActorDefinition<any, infer R> ? R : never
