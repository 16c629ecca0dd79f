/**
 * A message that ran out of deliveries (handed out `max_deliver` times, never acked) does not
 * sit unseen in its work queue: a node takes the server's advisory, writes a dead-letter
 * record with reason `DeliveriesExhausted` and the original bytes, deletes the message from
 * its stream and sends a notice to the receiving actor, which handles the message from the
 * record's copy (unless it had applied it: then only its acks were lost).
 *
 * A message to an agent has no actor to handle it: the actor it was sent by or for is told.
 *
 * Actor `a` lives on partition 0, which a node consumes; actor `b` on partition 1, whose
 * consumer the test drives itself at first, naking b's message as a node that cannot commit
 * its work would, until the server gives up on it (and agent `c`'s queue likewise).
 */
import { expect, layer } from "@effect/vitest"
import type { Consumer } from "@nats-io/jetstream"
import { Effect, Schema } from "effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import * as Provision from "../../nats/Provision.js"
import { Address, DeadLetter, Ids, Message } from "../../protocols/index.js"
import { Actor, Agent, Node, Outbox } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Kick = Message.define("test.kick", Schema.Struct({ n: Schema.Int }), { description: "starts a's request to b" })
const Request = Message.define("test.request", Schema.Struct({ n: Schema.Int }), { description: "a's request to b" })
const registry = Message.registry([Kick, Request, DeadLetter.DeadLettered])

const MAX_DELIVER = 3
/** Ids that put `a` on partition 0 and `b` on partition 1 (of 2). */
const A_ID = "x1"
const B_ID = "x1"

/** What the actors handled, and what `a` heard through `onDeadLetter`. */
const kicks: Array<number> = []
const requests: Array<number> = []
const told: Array<DeadLetter.DeadLetterRecord> = []

const A = Actor.make({
  type: "a",
  accepts: [Kick],
  state: Schema.Struct({ sent: Schema.Int }),
  initial: () => ({ sent: 0 }),
  handle: (s, m, ctx) =>
    Effect.sync(() => {
      if (!Message.is(Kick)(m)) return s
      kicks.push(m.payload.n)
      ctx.send(Address.actor("b", B_ID), Request, { n: m.payload.n })
      return { sent: s.sent + 1 }
    }),
  onDeadLetter: (s, _m, error) =>
    Effect.sync(() => {
      told.push(error as DeadLetter.DeadLetterRecord)
      return s
    })
})

/** An agent of the node, so that it watches the work queue's advisories. */
const idle = Agent.make({ name: "idle", accepts: [Kick], handle: () => Effect.void })

const B = Actor.make({
  type: "b",
  accepts: [Request],
  state: Schema.Struct({ handled: Schema.Int }),
  initial: () => ({ handled: 0 }),
  handle: (s, m) =>
    Effect.sync(() => {
      if (Message.is(Request)(m)) requests.push(m.payload.n)
      return { handled: s.handled + 1 }
    })
})

/** Fetches one delivery at a time from `consumer` and naks it, `times` deliveries of `type` in all. */
const nakDeliveries = async (consumer: Consumer, type: string, times: number) => {
  const seen: Array<{ readonly seq: number; readonly deliveries: number }> = []
  while (seen.length < times) {
    for await (const m of await consumer.fetch({ max_messages: 1, expires: 5_000 })) {
      if (m.json<{ type: string }>().type === type) seen.push({ seq: m.seq, deliveries: m.info.deliveryCount })
      m.nak()
    }
  }
  return seen
}

layer(Runtime.layer({ partitions: 2 }), { timeout: 60_000, excludeTestServices: true })("exhausted deliveries", (it) => {
  it.scoped("a message nak'd until the server gives up becomes a dead letter, leaves its stream, and its actor handles it from the record", () =>
    Effect.gen(function* () {
      const { js, jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      expect([subjects.partitionOf("a", A_ID), subjects.partitionOf("b", B_ID)]).toEqual([0, 1])
      const mailboxes = subjects.streams.mailboxes
      yield* Node.start({ registry, actors: [A, B], agents: [], commands: [], partitions: [0] })
      const durable = topology.mailboxConsumer(1).durable_name
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, durable, { max_deliver: MAX_DELIVER }))

      yield* Runtime.send(registry, "t1", Address.actor("a", A_ID), Kick, { n: 7 })
      // b's node cannot commit: it naks b's request every time it gets it, until the server gives up
      const consumer = yield* Effect.promise(() => js.consumers.get(mailboxes, durable))
      const seen = yield* Effect.promise(() => nakDeliveries(consumer, Request.type, MAX_DELIVER))
      const seq = seen[0]!.seq
      expect(seen).toEqual([1, 2, 3].map((deliveries) => ({ seq, deliveries })))
      // with a pull waiting (as a node keeps one), the server finds it may not deliver again, and
      // says so; what else this pull brings (the notice to b) is handed back for the next node
      yield* Effect.promise(async () => {
        for await (const m of await consumer.fetch({ max_messages: 1, expires: 2_000 })) {
          if (m.seq === seq) throw new Error(`delivered a ${m.info.deliveryCount}th time`)
          m.nak()
        }
      })

      // the record is on the dead-letter stream, and the message is no longer in its work queue
      const stored = yield* Crm.waitFor(
        "the dead-letter record",
        Effect.promise(() =>
          jsm.streams.getMessage(subjects.streams.deadLetters, { last_by_subj: subjects.deadLetter("t1", "DeliveriesExhausted") }).catch(() => undefined)
        ).pipe(Effect.map((m) => m ?? undefined))
      )
      const record = stored.json<{ payload: DeadLetter.DeadLetterRecord }>().payload
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
      yield* Crm.waitFor(
        "the message to leave its work queue",
        Effect.promise(() => jsm.streams.getMessage(mailboxes, { seq }).then((m) => (m === null ? true : undefined), () => true))
      )

      // b's partition gets a node: b handles the request from the notice, once; a hears nothing
      yield* Node.start({ registry, actors: [A, B], agents: [], commands: [], partitions: [1] })
      yield* Crm.waitFor("b to handle the lost request", Effect.sync(() => (requests.length > 0 ? true : undefined)))
      yield* Effect.sleep("500 millis")
      expect(requests).toEqual([7])
      expect(told).toEqual([])
    })
  )

  it.scoped("a notice of a message the actor applied is skipped (its acks were what got lost); one it never applied is handled", () =>
    Effect.gen(function* () {
      const { subjects } = yield* Deployment.Deployment
      yield* Node.start({ registry, actors: [A], agents: [], commands: [], partitions: [0] })
      const to = Address.actor("a", A_ID)
      kicks.length = 0
      const applied = yield* Runtime.send(registry, "t1", to, Kick, { n: 1 })
      yield* Crm.waitFor("a to apply its kick", Effect.sync(() => (kicks.length > 0 ? true : undefined)))
      // the record the runtime writes for a kick to `a` that ran out of deliveries
      const notice = (n: number, streamSeq: number) => {
        const id = Outbox.freshId()
        const envelope = {
          id: id as never,
          tenant: Ids.TenantId.make("t1"),
          from: Address.ext("test"),
          to,
          correlationId: id,
          causationId: null,
          ts: Date.now(),
          trace: { traceparent: Outbox.newTraceparent(id) }
        }
        return {
          reason: "DeliveriesExhausted",
          error: { _tag: "DeliveriesExhausted", message: "test" },
          receiver: to,
          subject: subjects.mailbox("t1", 0, "a", A_ID),
          stream: subjects.streams.mailboxes,
          streamSeq,
          deliveries: MAX_DELIVER,
          originalType: Kick.type,
          originalId: id,
          headers: {},
          dataBase64: Buffer.from(registry.encode(envelope, Kick, { n })).toString("base64"),
          at: Date.now()
        }
      }
      yield* Runtime.send(registry, "t1", to, DeadLetter.DeadLettered, notice(1, applied.seq), Address.ext("runtime"))
      yield* Runtime.send(registry, "t1", to, DeadLetter.DeadLettered, notice(99, applied.seq + 1_000), Address.ext("runtime"))
      yield* Crm.waitFor("a to handle the kick it never got", Effect.sync(() => (kicks.includes(99) ? true : undefined)))
      yield* Effect.sleep("300 millis")
      expect(kicks).toEqual([1, 99])
      expect(told).toEqual([])
    })
  )

  it.scoped("a message to an agent that ran out of deliveries: the actor it was sent for is told", () =>
    Effect.gen(function* () {
      const { js, jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      told.length = 0
      // agent `c`'s work queue has no node: the test naks its work as a node that cannot finish it would
      const work = topology.workConsumer("c", undefined, { maxDeliver: MAX_DELIVER })
      yield* Provision.consumer(subjects.streams.work, work)
      yield* Node.start({ registry, actors: [A], agents: [idle], commands: [], partitions: [0] })
      yield* Runtime.send(registry, "t1", Address.agent("c"), Request, { n: 5 }, Address.actor("a", A_ID))
      const consumer = yield* Effect.promise(() => js.consumers.get(subjects.streams.work, work.durable_name))
      const seen = yield* Effect.promise(() => nakDeliveries(consumer, Request.type, MAX_DELIVER))
      expect(seen.map((x) => x.deliveries)).toEqual([1, 2, 3])
      yield* Effect.promise(async () => {
        for await (const m of await consumer.fetch({ max_messages: 1, expires: 2_000 })) m.nak()
      })
      yield* Crm.waitFor("a to be told", Effect.sync(() => (told.length > 0 ? true : undefined)))
      expect(told).toHaveLength(1)
      expect(told[0]).toMatchObject({ reason: "DeliveriesExhausted", receiver: "agent:c", originalType: Request.type, deliveries: MAX_DELIVER })
      yield* Crm.waitFor(
        "the message to leave its work queue",
        Effect.promise(() => jsm.streams.getMessage(subjects.streams.work, { seq: seen[0]!.seq }).then((m) => (m === null ? true : undefined), () => true))
      )
    })
  )
})
