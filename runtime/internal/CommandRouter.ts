/**
 * Routes external commands to actors. External systems publish commands on
 * `<p>.<tenant>.cmd.<name>` without knowing partitions; the router checks them
 * (decodes, tenant of subject = tenant of envelope, a route exists) and forwards each to
 * its actor's mailbox with a deterministic id. Refused commands are dead-lettered.
 */
import type { Consumer, ConsumerMessages } from "@nats-io/jetstream"
import { Cause, Effect, Either, Fiber, Runtime, Schedule, Stream } from "effect"
import { Address, Errors as ProtocolErrors, type Message } from "../../protocols/index.js"
import { Outbox } from "../Outbox.js"
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
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const byType = new Map(routes.map((r) => [r.command.type, r]))
    const retry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(20)))
    const self = Address.ext("command-router")
    const messages: ConsumerMessages = yield* Effect.promise(() => consumer.consume({ max_messages: 256 }))

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
        const outbox = new Outbox(m.envelope, m.envelope.from)
        outbox.send(route.to(m.payload), route.command, m.payload)
        yield* transport.publish(outbox.messages).pipe(Effect.retry(retry))
        transport.counters.handled++
        msg.ack()
      }).pipe(
        Effect.catchAllCause((c) =>
          Effect.logWarning(`command not routed, will be redelivered: ${Cause.pretty(c)}`).pipe(
            Effect.zipRight(Effect.sync(() => msg.nak(1_000)))
          )
        )
      )

    const loop = runFork(
      Stream.fromAsyncIterable(messages, (e) => e).pipe(
        Stream.mapEffect(one, { concurrency: 64, unordered: true }),
        Stream.runDrain,
        Effect.ignore
      )
    )
    return {
      drain: (timeoutMs: number) =>
        Effect.promise(() => messages.close().catch(() => undefined)).pipe(
          Effect.zipRight(Fiber.await(loop).pipe(Effect.timeout(timeoutMs), Effect.ignore))
        )
    } satisfies CommandRouter
  })
