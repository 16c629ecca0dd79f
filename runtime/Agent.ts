/**
 * Defining an agent: a stateless worker on a shared work queue. Any node may handle any
 * message, many at once; replies go to the sender's address through the outbox.
 * Long handlers (model calls) keep their message alive with in-progress acks.
 *
 * Durable timers: an agent with `timers` may answer a message with `NotDue(until)`. The
 * message is then put back in its work queue (a delayed nak), acked and published nothing,
 * and delivered again at `until` (in hops of at most `maxHop`), on whichever node is up:
 * it lives in JetStream, not in a node's memory, so it survives node and cluster restarts.
 * When it is due the handler sends what it must, and the node fires at most
 * `firesPerSecond` of them (overdue ones beyond the rate are put back, spread out).
 */
import { Data, type Duration, type Effect } from "effect"
import type { Address, Envelope, Ids, Message } from "../protocols/index.js"
import type { SupervisionPolicy } from "./Supervision.js"

/** Options of one send. */
export interface SendOptions {
  /**
   * Derives the message's id from this key (and the tenant) instead of from the message
   * being handled: sends with the same key are stored once within the stream's duplicate
   * window (2 min), whatever caused them. Default: the id derives from the incoming message.
   */
  readonly key?: string
  /**
   * Sends on someone's behalf: replies to the message, and the notice if it fails past its
   * retries, go to this address instead of to this agent (e.g. the actor whose request is
   * being passed on). Default: replies come back here.
   */
  readonly replyTo?: Address.Address
}

/** What an agent handler sees besides the message. */
export interface AgentContext {
  readonly self: Address.Address
  readonly tenant: Ids.TenantId
  readonly envelope: Envelope.Envelope
  /** Queues a message; published after the handler succeeds, with a deterministic id. */
  readonly send: <A, I>(to: Address.Address, def: Message.MessageType<A, I>, payload: A, options?: SendOptions) => void
  /** Where replies to the message being handled go: its `replyTo`, if it names one, else its sender. */
  readonly replyTo: Address.Address
  /** Queues a reply (to `replyTo`). */
  readonly reply: <A, I>(def: Message.MessageType<A, I>, payload: A) => void
}

/**
 * A handler's answer "not yet": the message is delivered again at `until` (epoch ms), and
 * nothing it queued is published. Counts as neither a failure nor a retry. Meant for agents
 * with `timers` (their consumer allows unlimited deliveries: each hop is one).
 */
export class NotDue extends Data.TaggedClass("NotDue")<{ readonly until: number }> {}

/** Answers "not yet, deliver this message again at `until`" (epoch ms). */
export const notDue = (until: number): NotDue => new NotDue({ until })

/** Durable timer settings of an agent (see the module header). */
export interface TimerOptions {
  /**
   * Fires (due messages whose handler queued something) per second on one node; overdue
   * ones beyond it are put back and spread out. Default `NEXUS_TIMER_FIRES_PER_SECOND`, else 500.
   */
  readonly firesPerSecond?: number
  /** Longest single wait in the queue; a longer one is delivered and put back again. Default 1 hour. */
  readonly maxHop?: Duration.DurationInput
  /** Largest random delay added to a fire put back by the rate (spreads them out). Default 500 ms. */
  readonly spread?: Duration.DurationInput
}

/** An agent definition. */
export interface AgentDefinition<R = any> {
  /** Agent name: a subject token, e.g. `content`. */
  readonly name: string
  readonly accepts: ReadonlyArray<Message.MessageType>
  /** Handles a message; returns `NotDue` to have it delivered again later. */
  readonly handle: (message: Message.Decoded, ctx: AgentContext) => Effect.Effect<void | NotDue, unknown, R>
  /** Messages handled at once per node. Default 64. */
  readonly concurrency?: number
  readonly supervision?: SupervisionPolicy
  /**
   * Makes the agent's messages durable timers: its consumer has no delivery limit and no
   * limit on unacked messages (a waiting timer is one), and fires are rate-limited per node.
   * `true` takes the defaults. Default: none (a plain work queue). A timer handler should
   * only decide (no outside effects): a fire held back by the rate is handled again later.
   */
  readonly timers?: true | TimerOptions
}

/** Defines an agent. */
export const make = <R>(definition: AgentDefinition<R>): AgentDefinition<R> => definition
