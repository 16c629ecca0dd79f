/**
 * A message that ran out of deliveries (handed out `max_deliver` times, never acked) does not
 * sit unseen in its work queue: a node takes the server's advisory, writes a dead-letter
 * record with reason `DeliveriesExhausted` and the original bytes, tells the actor that sent
 * it (its `onDeadLetter` escalates) and deletes it from the stream.
 *
 * Actor `a` lives on partition 0, which the node consumes; actor `b` on partition 1, whose
 * consumer the test drives itself, naking b's message as a node that cannot commit its work
 * would, until the server gives up on it.
 */
import { expect, layer } from "@effect/vitest"
import type { Consumer } from "@nats-io/jetstream"
import { Effect, Schema } from "effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Kick = Message.define("test.kick", Schema.Struct({ n: Schema.Int }), { description: "starts a's request to b" })
const Request = Message.define("test.request", Schema.Struct({ n: Schema.Int }), { description: "a's request to b" })
const registry = Message.registry([Kick, Request, DeadLetter.DeadLettered])

const MAX_DELIVER = 3
/** Ids that put `a` on partition 0 and `b` on partition 1 (of 2). */
const A_ID = "x1"
const B_ID = "x1"
/** What `a` heard about its requests that failed. */
const told: Array<typeof DeadLetter.DeadLettered.payload.Type> = []

const A = Actor.make({
  type: "a",
  accepts: [Kick],
  state: Schema.Struct({ sent: Schema.Int }),
  initial: () => ({ sent: 0 }),
  handle: (s, m, ctx) =>
    Effect.sync(() => {
      if (Message.is(Kick)(m)) ctx.send(Address.actor("b", B_ID), Request, { n: m.payload.n })
      return { sent: s.sent + 1 }
    }),
  onDeadLetter: (s, _m, error) =>
    Effect.sync(() => {
      told.push(error as typeof DeadLetter.DeadLettered.payload.Type)
      return s
    })
})

/** Fetches one delivery at a time from `consumer` and naks it, `times` deliveries in all. */
const nakDeliveries = async (consumer: Consumer, times: number) => {
  const seen: Array<{ readonly seq: number; readonly deliveries: number }> = []
  while (seen.length < times) {
    for await (const m of await consumer.fetch({ max_messages: 1, expires: 5_000 })) {
      seen.push({ seq: m.seq, deliveries: m.info.deliveryCount })
      m.nak()
    }
  }
  return seen
}

layer(Runtime.layer({ partitions: 2 }), { timeout: 60_000, excludeTestServices: true })("exhausted deliveries", (it) => {
  it.scoped("a message nak'd until the server gives up becomes a dead letter, its sender is told, and it leaves its stream", () =>
    Effect.gen(function* () {
      const { js, jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      expect([subjects.partitionOf("a", A_ID), subjects.partitionOf("b", B_ID)]).toEqual([0, 1])
      const mailboxes = subjects.streams.mailboxes
      yield* Node.start({ registry, actors: [A], agents: [], commands: [], partitions: [0] })
      const durable = topology.mailboxConsumer(1).durable_name
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, durable, { max_deliver: MAX_DELIVER }))

      yield* Runtime.send(registry, "t1", Address.actor("a", A_ID), Kick, { n: 7 })
      // b's node cannot commit: it naks b's request every time it gets it, until the server gives up
      const consumer = yield* Effect.promise(() => js.consumers.get(mailboxes, durable))
      const seen = yield* Effect.promise(() => nakDeliveries(consumer, MAX_DELIVER))
      const seq = seen[0]!.seq
      expect(seen).toEqual([1, 2, 3].map((deliveries) => ({ seq, deliveries })))
      // with a pull waiting (as a node keeps one), the server finds it may not deliver again, and says so
      const after = yield* Effect.promise(() => consumer.fetch({ max_messages: 1, expires: 2_000 }))
      yield* Effect.promise(async () => {
        for await (const m of after) if (m.seq === seq) throw new Error(`delivered a ${m.info.deliveryCount}th time`)
      })

      yield* Crm.waitFor("a to be told", Effect.sync(() => (told.length > 0 ? true : undefined)))
      const record = told[0]!
      expect(record).toMatchObject({
        reason: "DeliveriesExhausted",
        error: { _tag: "DeliveriesExhausted" },
        receiver: `actor:b:${B_ID}`,
        stream: mailboxes,
        streamSeq: seq,
        deliveries: MAX_DELIVER,
        originalType: Request.type
      })
      const original = JSON.parse(Buffer.from(record.dataBase64, "base64").toString()) as { type: string; payload: unknown }
      expect(original).toMatchObject({ type: Request.type, payload: { n: 7 } })
      // the record is on the dead-letter stream, the message is no longer in its work queue
      const stored = yield* Effect.promise(() =>
        jsm.streams.getMessage(subjects.streams.deadLetters, { last_by_subj: subjects.deadLetter("t1", "DeliveriesExhausted") })
      )
      expect(stored?.json<{ payload: { streamSeq: number } }>().payload.streamSeq).toBe(seq)
      yield* Crm.waitFor(
        "the message to leave its work queue",
        Effect.promise(() => jsm.streams.getMessage(mailboxes, { seq }).then((m) => (m === null ? true : undefined), () => true))
      )
      expect(told).toHaveLength(1)
    })
  )

  it.scoped("a notice of a message the actor applied is skipped (its acks were what got lost); one it never applied escalates", () =>
    Effect.gen(function* () {
      const { subjects } = yield* Deployment.Deployment
      yield* Node.start({ registry, actors: [A], agents: [], commands: [], partitions: [0] })
      const applied = yield* Runtime.send(registry, "t1", Address.actor("a", A_ID), Kick, { n: 1 })
      const before = told.length
      // the record the runtime writes for a message to `a` that ran out of deliveries
      const notice = (streamSeq: number) => ({
        reason: "DeliveriesExhausted",
        error: { _tag: "DeliveriesExhausted", message: "test" },
        receiver: Address.actor("a", A_ID),
        subject: subjects.mailbox("t1", 0, "a", A_ID),
        stream: subjects.streams.mailboxes,
        streamSeq,
        deliveries: MAX_DELIVER,
        originalType: Kick.type,
        originalId: "k",
        headers: {},
        dataBase64: "",
        at: Date.now()
      })
      yield* Runtime.send(registry, "t1", Address.actor("a", A_ID), DeadLetter.DeadLettered, notice(applied.seq), Address.ext("runtime"))
      yield* Runtime.send(registry, "t1", Address.actor("a", A_ID), DeadLetter.DeadLettered, notice(applied.seq + 1_000), Address.ext("runtime"))
      yield* Crm.waitFor("a to be told of the message it never applied", Effect.sync(() => (told.length > before ? true : undefined)))
      yield* Effect.sleep("300 millis")
      expect(told.slice(before).map((r) => r.streamSeq)).toEqual([applied.seq + 1_000])
    })
  )
})
