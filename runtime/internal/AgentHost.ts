/**
 * The agent engine of one node: one pull consumer per agent on the shared work queue,
 * many messages handled at once. Each message: decode, handle under supervision (with
 * in-progress acks while it runs), publish the outbox, then ack. Past its retries the
 * message is dead-lettered and the sender, if it is an actor, is told.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream"
import { Cause, Effect, Either, Runtime, Schedule, type Scope } from "effect"
import { Address, DeadLetter, Errors as ProtocolErrors, type Message } from "../../protocols/index.js"
import type { AgentContext, AgentDefinition } from "../Agent.js"
import { describe, HandlerFailed } from "../Errors.js"
import { Outbox } from "../Outbox.js"
import * as Supervision from "../Supervision.js"
import * as Consumption from "./Consumption.js"
import * as Heartbeat from "./Heartbeat.js"
import type { Transport } from "./Transport.js"

/** A running agent host. */
export interface AgentHost {
  readonly start: (definition: AgentDefinition<any>, consumer: Consumer) => Effect.Effect<void>
  /** Stops pulling and waits for handlers in flight (bounded by `timeoutMs`). */
  readonly drain: (timeoutMs: number) => Effect.Effect<void>
}

const heartbeatEveryMs = 2_000

/** Creates the agent host. */
export const make = <R>(transport: Transport): Effect.Effect<AgentHost, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<R>()
    const runFork = Runtime.runFork(runtime)
    const counters = transport.counters
    const heartbeat = Heartbeat.make(heartbeatEveryMs)
    yield* Effect.addFinalizer(() => Effect.sync(heartbeat.stop))
    const runtimeFork = (effect: Effect.Effect<void, never, R>, onDone: () => void) =>
      runFork(effect).addObserver(onDone)
    const loops: Array<Consumption.BoundedConsumption> = []

    const commitRetry = Schedule.exponential("50 millis", 2).pipe(
      Schedule.either(Schedule.spaced("2 seconds")),
      Schedule.intersect(Schedule.recurs(30))
    )

    const refuse = (msg: JsMsg, receiver: string, error: unknown, decoded?: Message.Decoded) =>
      transport.deadLetter(msg, receiver, error, decoded).pipe(Effect.retry(commitRetry))

    const processOne = (def: AgentDefinition<R>, accepts: ReadonlySet<string>, self: Address.Address, msg: JsMsg) =>
      Effect.gen(function* () {
        counters.received++
        if (msg.info.deliveryCount > 1) counters.redeliveries++
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
        const outbox = new Outbox(m.envelope, self)
        const ctx: AgentContext = {
          self,
          tenant: m.envelope.tenant,
          envelope: m.envelope,
          send: (to, d, p) => outbox.send(to, d, p),
          reply: (d, p) => outbox.send(m.envelope.from, d, p)
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
          Effect.retry(Supervision.schedule(def.supervision ?? Supervision.defaultPolicy)),
          Effect.either,
          Effect.ensuring(Effect.sync(() => heartbeat.remove(msg))),
          Effect.ensuring(Effect.sync(() => counters.inFlight--))
        )
        if (Either.isRight(result)) {
          yield* transport.publish(outbox.messages).pipe(Effect.retry(commitRetry))
        } else {
          const failure = new HandlerFailed({ receiver: self, messageType: m.type, attempts, message: describe(result.left) })
          const record = yield* refuse(msg, self, failure, m)
          // escalate to the sender: an actor learns that what it asked for failed
          if (m.envelope.from.startsWith("actor:")) {
            const notice = new Outbox(m.envelope, self)
            notice.send(m.envelope.from, DeadLetter.DeadLettered, record)
            yield* transport.publish(notice.messages).pipe(Effect.retry(commitRetry))
          }
        }
        counters.handled++
        msg.ack()
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`agent ${def.name}: message not handled, will be redelivered: ${Cause.pretty(cause)}`).pipe(
            Effect.zipRight(Effect.sync(() => msg.nak(1_000)))
          )
        )
      )

    const start = (def: AgentDefinition<R>, consumer: Consumer) =>
      Effect.sync(() => {
        const concurrency = def.concurrency ?? 64
        const self = Address.agent(def.name)
        const accepts = new Set(def.accepts.map((a) => a.type))
        const consumption = Consumption.startBounded(
          consumer,
          concurrency,
          (msg, done) => runtimeFork(processOne(def, accepts, self, msg), done),
          (e) => runFork(Effect.logWarning(`agent ${def.name}: consumption interrupted, reopening: ${describe(e)}`))
        )
        loops.push(consumption)
      })

    const drain = (timeoutMs: number) =>
      Effect.gen(function* () {
        yield* Effect.forEach(loops, (l) => Effect.promise(() => l.stop()), { discard: true })
        yield* Effect.forEach(loops, (l) => Effect.promise(l.idle), { discard: true }).pipe(
          Effect.timeout(timeoutMs),
          Effect.ignore
        )
      })

    return { start, drain }
  })
