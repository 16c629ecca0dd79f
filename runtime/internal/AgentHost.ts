/**
 * The agent engine of one node: one pull consumer per agent on the shared work queue,
 * many messages handled at once. Each message: decode, handle under supervision (with
 * in-progress acks while it runs), publish the outbox, then ack. Past its retries the
 * message is dead-lettered and the sender, if it is an actor, is told. With a tracer
 * configured, each message is handled in a span continuing its envelope's trace
 * (`MessageSpan`).
 *
 * On drain, handlers in flight get a grace period to finish; those still running after it
 * are handed back: their message is nak'd (redelivered at once to another node, instead
 * of after the ack wait) and their fiber interrupted. A message whose commit (outbox,
 * ack) has begun is never handed back; one handed back never commits.
 *
 * Durable timers: a handler answering `NotDue(until)` has its message nak'd with the wait
 * (at most a hop), nothing published and nothing acked; the message stays in the work
 * queue and comes back when due. For an agent with `timers`, a due message that would
 * publish takes a token of the node's fire rate first; without one it is nak'd until its
 * slot (`TimerGate`), so overdue timers after downtime are spread out.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream"
import { Cause, Duration, Effect, Either, Fiber, Runtime, Schedule, type Scope } from "effect"
import { Address, DeadLetter, Errors as ProtocolErrors, type Message, Trace } from "../../protocols/index.js"
import { type AgentContext, type AgentDefinition, NotDue } from "../Agent.js"
import { describe, HandlerFailed } from "../Errors.js"
import { Outbox } from "../Outbox.js"
import * as Supervision from "../Supervision.js"
import * as Consumption from "./Consumption.js"
import * as Heartbeat from "./Heartbeat.js"
import * as MessageSpan from "./MessageSpan.js"
import * as TimerGate from "./TimerGate.js"
import type { Transport } from "./Transport.js"

/** A running agent host. */
export interface AgentHost {
  readonly start: (definition: AgentDefinition<any>, consumer: Consumer) => Effect.Effect<void>
  /**
   * Stops pulling, gives handlers in flight `graceMs` (default `timeoutMs`) to finish, hands
   * back (nak) the messages of those still running, and waits for commits in progress
   * (all bounded by `timeoutMs`).
   */
  readonly drain: (timeoutMs: number, graceMs?: number) => Effect.Effect<void>
}

/** A message being handled: its fiber, whether its commit began, whether a drain handed it back. */
interface InFlight {
  readonly fiber: Fiber.RuntimeFiber<void>
  committing: boolean
  handedBack: boolean
}

/** Options of the agent host. */
export interface AgentHostOptions {
  /** Fires per second of a timer agent on this node, unless its definition says. Default 500. */
  readonly timerFiresPerSecond: number
}

/** Default options. */
export const defaults: AgentHostOptions = { timerFiresPerSecond: 500 }

/** The timer settings of a timer agent, resolved. */
interface Timers {
  readonly maxHopMs: number
  readonly gate: TimerGate.TimerGate
}

const heartbeatEveryMs = 2_000
/** Longest wait of one nak for a `NotDue` answer (the message then comes back and waits again). */
const DEFAULT_MAX_HOP_MS = 3_600_000
/** Shortest wait of a `NotDue` nak (an answer with a past time must not spin). */
const MIN_NOT_DUE_MS = 100

/** Creates the agent host. */
export const make = <R>(transport: Transport, options: AgentHostOptions = defaults): Effect.Effect<AgentHost, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    // messages are handled in fibers forked from this runtime: tracing off from the start
    // when no tracer is configured (`Trace.untraced`)
    const runtime = yield* Trace.untraced(Effect.runtime<R>())
    const runFork = Runtime.runFork(runtime)
    const counters = transport.counters
    const heartbeat = Heartbeat.make(heartbeatEveryMs)
    yield* Effect.addFinalizer(() => Effect.sync(heartbeat.stop))
    const inFlight = new Map<JsMsg, InFlight>()
    const runtimeFork = (msg: JsMsg, effect: Effect.Effect<void, never, R>, onDone: () => void) => {
      const fiber = runFork(effect)
      inFlight.set(msg, { fiber, committing: false, handedBack: false })
      fiber.addObserver(() => {
        inFlight.delete(msg)
        onDone()
      })
    }
    /** Marks the commit of `msg` as begun; false if a drain handed it back meanwhile (it must not commit). */
    const beginCommit = (msg: JsMsg): boolean => {
      const entry = inFlight.get(msg)
      if (entry === undefined) return true
      if (entry.handedBack) return false
      entry.committing = true
      return true
    }
    const loops: Array<Consumption.BoundedConsumption> = []

    const commitRetry = Schedule.exponential("50 millis", 2).pipe(
      Schedule.either(Schedule.spaced("2 seconds")),
      Schedule.intersect(Schedule.recurs(30))
    )

    const refuse = (msg: JsMsg, receiver: string, error: unknown, decoded?: Message.Decoded) =>
      transport.deadLetter(msg, receiver, error, decoded).pipe(Effect.retry(commitRetry))

    const timersOf = (def: AgentDefinition<R>): Timers | null => {
      if (def.timers === undefined) return null
      const t = def.timers === true ? {} : def.timers
      return {
        maxHopMs: t.maxHop === undefined ? DEFAULT_MAX_HOP_MS : Math.max(1, Duration.toMillis(t.maxHop)),
        gate: TimerGate.make({
          perSecond: t.firesPerSecond ?? options.timerFiresPerSecond,
          spreadMs: t.spread === undefined ? 500 : Duration.toMillis(t.spread)
        })
      }
    }

    const processOne = (def: AgentDefinition<R>, timers: Timers | null, accepts: ReadonlySet<string>, self: Address.Address, msg: JsMsg) =>
      Effect.gen(function* () {
        counters.received++
        // a timer's deliveries after the first are its waits, not failures
        if (msg.info.deliveryCount > 1 && timers === null) counters.redeliveries++
        const decoded = transport.decode(msg)
        if (Either.isLeft(decoded)) {
          yield* refuse(msg, self, decoded.left)
          return msg.ack()
        }
        const m = decoded.right
        if (!accepts.has(m.type)) {
          yield* refuse(
            msg,
            self,
            new ProtocolErrors.UnexpectedMessage({ type: m.type, receiver: self, message: `agent '${def.name}' does not accept '${m.type}'` }),
            m
          )
          return msg.ack()
        }
        yield* handle(def, timers, self, msg, m)
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`agent ${def.name}: message not handled, will be redelivered: ${Cause.pretty(cause)}`).pipe(
            Effect.zipRight(Effect.sync(() => msg.nak(1_000)))
          )
        )
      )

    /** Handles a decoded message in its span: supervised handler, outbox, escalation, ack. */
    const handle = (def: AgentDefinition<R>, timers: Timers | null, self: Address.Address, msg: JsMsg, m: Message.Decoded) =>
      Effect.gen(function* () {
        const outbox = new Outbox(m.envelope, self)
        // replies, and the notice of a failure, go here
        const replyTo = m.envelope.replyTo ?? m.envelope.from
        const ctx: AgentContext = {
          self,
          tenant: m.envelope.tenant,
          envelope: m.envelope,
          send: (to, d, p, o) => outbox.send(to, d, p, o),
          replyTo,
          reply: (d, p) => outbox.send(replyTo, d, p)
        }
        let attempts = 0
        counters.inFlight++
        heartbeat.add(msg)
        const result = yield* Effect.suspend(() => {
          attempts++
          if (attempts > 1) counters.retries++
          outbox.messages.length = 0
          return def.handle(m, ctx)
        }).pipe(
          Effect.catchAllDefect((d) => Effect.fail(d)),
          (attempt) => Supervision.supervised(attempt, def.supervision ?? Supervision.defaultPolicy),
          Effect.either,
          // one finalizer, not one each: an `ensuring` costs several interpreter steps
          Effect.ensuring(
            Effect.sync(() => {
              heartbeat.remove(msg)
              counters.inFlight--
            })
          )
        )
        // handed back by a drain while the handler finished: another node handles it again
        if (!beginCommit(msg)) return
        if (Either.isRight(result)) {
          // not yet: back to the queue until due (the in-progress acks stopped above)
          if (result.right instanceof NotDue) {
            const wait = Math.max(MIN_NOT_DUE_MS, result.right.until - Date.now())
            counters.timerHops++
            yield* Trace.annotate({ "nexus.not_due_until": result.right.until })
            return msg.nak(Math.min(wait, timers?.maxHopMs ?? DEFAULT_MAX_HOP_MS))
          }
          if (timers !== null && outbox.messages.length > 0) {
            const wait = timers.gate.take(Date.now())
            if (wait > 0) {
              counters.timersHeldBack++
              return msg.nak(wait)
            }
            counters.timersFired++
          }
          yield* Supervision.retrying(transport.publish(outbox.messages), commitRetry)
        } else {
          yield* Trace.annotate({ "nexus.dead_lettered": true })
          const failure = new HandlerFailed({ receiver: self, messageType: m.type, attempts, message: describe(result.left) })
          const record = yield* refuse(msg, self, failure, m)
          // escalate to whoever asked: an actor learns that what it asked for failed
          if (replyTo.startsWith("actor:")) {
            const notice = new Outbox(m.envelope, self)
            notice.send(replyTo, DeadLetter.DeadLettered, record)
            yield* transport.publish(notice.messages).pipe(Effect.retry(commitRetry))
          }
        }
        counters.handled++
        msg.ack()
      }).pipe((handled) => MessageSpan.around(handled, "agent.handle", msg, m, self))

    const start = (def: AgentDefinition<R>, consumer: Consumer) =>
      Effect.sync(() => {
        const concurrency = def.concurrency ?? 64
        const timers = timersOf(def)
        const self = Address.agent(def.name)
        const accepts = new Set(def.accepts.map((a) => a.type))
        const consumption = Consumption.startBounded(
          consumer,
          concurrency,
          (msg, done) => runtimeFork(msg, processOne(def, timers, accepts, self, msg), done),
          (e) => runFork(Effect.logWarning(`agent ${def.name}: consumption interrupted, reopening: ${describe(e)}`)),
          { ping: transport.ping, onLapse: () => void transport.counters.pullsLapsed++ }
        )
        loops.push(consumption)
      })

    // timed waits on promises, not `Effect.timeout`: a drain runs in a scope's finalizer,
    // where nothing can be interrupted, so a timeout there would wait for what it times out
    const idleWithin = (ms: number) =>
      Effect.promise(() => Promise.race([Promise.all(loops.map((l) => l.idle())), new Promise<void>((r) => setTimeout(r, Math.max(0, ms)).unref())]))

    const drain = (timeoutMs: number, graceMs: number = timeoutMs) =>
      Effect.gen(function* () {
        const deadline = Date.now() + timeoutMs
        // released, not closed: what the server already sent goes back for another node
        yield* Effect.forEach(loops, (l) => Effect.promise(() => l.release()), { discard: true })
        yield* idleWithin(Math.min(graceMs, deadline - Date.now()))
        // still running after the grace: hand back at once (synchronously, so no commit can
        // begin in between), then interrupt the handlers; commits in progress finish
        const late = [...inFlight.entries()].filter(([, e]) => !e.committing && !e.handedBack)
        for (const [msg, e] of late) {
          e.handedBack = true
          heartbeat.remove(msg)
          msg.nak()
        }
        if (late.length > 0) {
          yield* Effect.logInfo(`agents: ${late.length} message(s) still handled after the ${graceMs} ms grace; handed back for redelivery`)
          yield* Effect.forEach(late, ([, e]) => Fiber.interruptFork(e.fiber), { discard: true })
        }
        yield* idleWithin(deadline - Date.now())
        // the connection closes after this: let the released pulls end first (what they bring goes back)
        yield* Effect.promise(() => Consumption.allEnded(loops))
      })

    return { start, drain }
  })
