/**
 * A message that ran out of deliveries while no node was there to take the server's
 * advisory (advisories are core NATS: nobody listening, nobody told) is still found: a node
 * sweeps its consumers now and then, and one with nothing pending and nothing unacked that
 * still holds a message it delivered has given up on it. The sweep dead-letters it as the
 * advisory would have, and its actor handles it from the record.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import * as Provision from "../../nats/Provision.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Request = Message.define("test.swept", Schema.Struct({ n: Schema.Int }), { description: "a request to b" })
const registry = Message.registry([Request, DeadLetter.DeadLettered])
const MAX_DELIVER = 3
/** On partition 1 of 2. */
const B_ID = "x1"

const handled: Array<number> = []
const B = Actor.make({
  type: "b",
  accepts: [Request],
  state: Schema.Struct({ handled: Schema.Int }),
  initial: () => ({ handled: 0 }),
  handle: (s, m) =>
    Effect.sync(() => {
      if (Message.is(Request)(m)) handled.push(m.payload.n)
      return { handled: s.handled + 1 }
    })
})

layer(Runtime.layer({ partitions: 2 }), { timeout: 60_000, excludeTestServices: true })("exhausted deliveries, advisory missed", (it) => {
  it.scoped("a message whose advisory nobody took is found by a node's sweep, dead-lettered, and handled by its actor", () =>
    Effect.gen(function* () {
      const { js, jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      expect(subjects.partitionOf("b", B_ID)).toBe(1)
      const mailboxes = subjects.streams.mailboxes
      const durable = topology.mailboxConsumer(1).durable_name
      yield* Provision.consumer(mailboxes, topology.mailboxConsumer(1))
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, durable, { max_deliver: MAX_DELIVER }))

      // no node runs: the test naks b's request until the server gives up, and its advisory goes nowhere
      const { seq } = yield* Runtime.send(registry, "t1", Address.actor("b", B_ID), Request, { n: 42 })
      const consumer = yield* Effect.promise(() => js.consumers.get(mailboxes, durable))
      const deliveries = yield* Effect.promise(async () => {
        const seen: Array<number> = []
        // one pull more than deliveries: with a pull waiting, the server finds it may not deliver again
        for (let pulls = 0; pulls <= MAX_DELIVER; pulls++) {
          for await (const m of await consumer.fetch({ max_messages: 1, expires: 2_000 })) {
            seen.push(m.info.deliveryCount)
            m.nak()
          }
        }
        return seen
      })
      expect(deliveries).toEqual([1, 2, 3])
      const info = yield* Effect.promise(() => consumer.info())
      expect({ pending: info.num_pending, unacked: info.num_ack_pending }).toEqual({ pending: 0, unacked: 0 })
      expect((yield* Effect.promise(() => jsm.streams.getMessage(mailboxes, { seq })))!.seq, "still stored, unseen").toBe(seq)

      // a node comes; its sweep finds the message, and b handles it from the dead letter's copy
      yield* Node.start({ registry, actors: [B], agents: [], commands: [], partitions: [1], exhaustedSweepEvery: "500 millis" })
      yield* Crm.waitFor("b to handle its request", Effect.sync(() => (handled.includes(42) ? true : undefined)))
      expect(handled).toEqual([42])
      const record = yield* Effect.promise(() =>
        jsm.streams.getMessage(subjects.streams.deadLetters, { last_by_subj: subjects.deadLetter("t1", "DeliveriesExhausted") })
      )
      const payload = record!.json<{ payload: DeadLetter.DeadLetterRecord }>().payload
      expect(payload).toMatchObject({ reason: "DeliveriesExhausted", receiver: `actor:b:${B_ID}`, streamSeq: seq })
      // the sweep reports the consumer's delivery limit, which the node's start set back to the deployment's
      expect(payload.deliveries).toBeGreaterThanOrEqual(MAX_DELIVER)
      yield* Crm.waitFor(
        "the message to leave the mailbox stream",
        Effect.promise(() => jsm.streams.getMessage(mailboxes, { seq }).then((m) => (m === null ? true : undefined), () => true))
      )
      // later sweeps find nothing more to do: b handled it once
      yield* Effect.sleep("1500 millis")
      expect(handled).toEqual([42])
    })
  )
})
