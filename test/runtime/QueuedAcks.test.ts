/**
 * Deliveries queued behind a busy actor keep their place: a node holds them in the actor's
 * queue until their turn, and sends in-progress acks for them from the moment they are
 * queued, so their ack wait does not run out meanwhile (the server would hand them out a
 * second time: to this node again, or to another one). The mailbox consumer's ack wait is
 * shortened here so that one slow message outlasts it.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { NatsClient } from "../../nats/NatsClient.js"
import { Deployment } from "../../nats/index.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Work = Message.define("test.queued-work", Schema.Struct({ n: Schema.Int }), { description: "one unit of work" })
const registry = Message.registry([Work, DeadLetter.DeadLettered])

const ACK_WAIT_MS = 5_000
/** Longer than the ack wait plus the heartbeat's period (in-progress acks go out every 2 s). */
const SLOW_MS = 8_000

/** The numbers of the messages the actor handled, in order. */
const handled: Array<number> = []
let slowStarted = false

const Busy = Actor.make({
  type: "busy",
  accepts: [Work],
  state: Schema.Struct({ done: Schema.Int }),
  initial: () => ({ done: 0 }),
  handle: (s, m) =>
    Effect.gen(function* () {
      if (!Message.is(Work)(m)) return s
      if (m.payload.n === 0) {
        slowStarted = true
        yield* Effect.sleep(SLOW_MS)
      }
      handled.push(m.payload.n)
      return { done: s.done + 1 }
    })
})

layer(Runtime.layer({ partitions: 1 }), { timeout: 60_000, excludeTestServices: true })("queued deliveries", (it) => {
  it.scoped("messages waiting behind a slow one are not redelivered when they outwait the ack wait", () =>
    Effect.gen(function* () {
      const { jsm } = yield* NatsClient
      const { topology } = yield* Deployment.Deployment
      const mailboxes = topology.subjects.streams.mailboxes
      const node = yield* Node.start({ registry, actors: [Busy], agents: [], commands: [] })
      // the node provisioned its mailbox consumer; from now on it waits ACK_WAIT_MS for an ack
      const [consumer] = yield* Effect.promise(() => jsm.consumers.list(mailboxes).next())
      const updated = yield* Effect.promise(() => jsm.consumers.update(mailboxes, consumer!.name, { ack_wait: ACK_WAIT_MS * 1_000_000 }))
      expect(updated.config.ack_wait).toBe(ACK_WAIT_MS * 1_000_000)

      yield* Runtime.send(registry, "t1", Address.actor("busy", "one"), Work, { n: 0 })
      yield* Crm.waitFor("the slow message to start", Effect.sync(() => (slowStarted ? true : undefined)))
      for (let n = 1; n <= 5; n++) yield* Runtime.send(registry, "t1", Address.actor("busy", "one"), Work, { n })

      yield* Crm.waitFor("all six messages handled", Effect.sync(() => (handled.length >= 6 ? true : undefined)))
      // a redelivery would have reached the node (counted) before its first delivery was acked
      yield* Effect.sleep("1 second")
      expect(handled).toEqual([0, 1, 2, 3, 4, 5])
      expect({ redeliveries: node.counters.redeliveries, staleSkipped: node.counters.staleSkipped }).toEqual({
        redeliveries: 0,
        staleSkipped: 0
      })
    })
  )
})
