/**
 * Routes external commands to actors. External systems publish commands on
 * `<p>.<tenant>.cmd.<name>` without knowing partitions; the router checks them
 * (decodes, tenant of subject = tenant of envelope, a route exists) and forwards each to
 * its actor's mailbox with a deterministic id (in a span continuing the command's trace when
 * a tracer is configured). Refused commands are dead-lettered.
 */
import type { Consumer } from "@nats-io/jetstream"
import { Cause, Effect, Either, Runtime, Schedule } from "effect"
import { Address, Errors as ProtocolErrors, type Message, Trace } from "../../protocols/index.js"
import { Outbox } from "../Outbox.js"
import * as Supervision from "../Supervision.js"
import * as Consumption from "./Consumption.js"
import * as MessageSpan from "./MessageSpan.js"
import type { Transport } from "./Transport.js"

/** How a command type reaches its actor. */
export interface CommandRoute<A = any> {
  readonly command: Message.MessageType<A, any>
  /** The actor that handles the command. */
  readonly to: (payload: A) => Address.Address
}

/** A running command router. */
export interface CommandRouter {
  readonly drain: (timeoutMs: number) => Effect.Effect<void>
}

/** Starts routing deliveries of the command consumer. */
export const start = (transport: Transport, routes: ReadonlyArray<CommandRoute>, consumer: Consumer) =>
  Effect.gen(function* () {
    // commands are routed in fibers forked from this runtime: tracing off from the start when
    // no tracer is configured (`Trace.untraced`)
    const runFork = Runtime.runFork(yield* Trace.untraced(Effect.runtime<never>()))
    const byType = new Map(routes.map((r) => [r.command.type, r]))
    const retry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(20)))
    const self = Address.ext("command-router")

    const one = (msg: import("@nats-io/jetstream").JsMsg) =>
      Effect.gen(function* () {
        transport.counters.received++
        const decoded = transport.decode(msg)
        if (Either.isLeft(decoded)) {
          yield* transport.deadLetter(msg, self, decoded.left).pipe(Effect.retry(retry))
          return msg.ack()
        }
        const m = decoded.right
        const route = byType.get(m.type)
        if (route === undefined) {
          yield* transport
            .deadLetter(
              msg,
              self,
              new ProtocolErrors.UnexpectedMessage({ type: m.type, receiver: self, message: `'${m.type}' is not a command` }),
              m
            )
            .pipe(Effect.retry(retry))
          return msg.ack()
        }
        // in a span continuing the command's trace: the forwarded command is its child
        yield* MessageSpan.around(
          Effect.suspend(() => {
            const outbox = new Outbox(m.envelope, m.envelope.from)
            outbox.send(route.to(m.payload), route.command, m.payload)
            return Supervision.retrying(transport.publish(outbox.messages), retry)
          }),
          "command.route",
          msg,
          m,
          self
        )
        transport.counters.handled++
        msg.ack()
      }).pipe(
        Effect.catchAllCause((c) =>
          Effect.logWarning(`command not routed, will be redelivered: ${Cause.pretty(c)}`).pipe(
            Effect.zipRight(Effect.sync(() => msg.nak(1_000)))
          )
        )
      )

    const consumption = Consumption.startBounded(
      consumer,
      64,
      (msg, done) => void runFork(one(msg)).addObserver(done),
      (e) => runFork(Effect.logWarning(`command router: consumption interrupted, reopening: ${String(e)}`)),
      { ping: transport.ping, onLapse: () => void transport.counters.pullsLapsed++ }
    )
    return {
      drain: (timeoutMs: number) =>
        // released, not closed: what the server already sent goes back for another node
        Effect.promise(() => consumption.release()).pipe(
          Effect.zipRight(Effect.interruptible(Effect.promise(consumption.idle)).pipe(Effect.timeout(timeoutMs), Effect.ignore)),
          Effect.zipRight(Effect.promise(() => Consumption.allEnded([consumption])))
        )
    } satisfies CommandRouter
  })
