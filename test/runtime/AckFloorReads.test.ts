/**
 * A node reads the ack floor of a partition's mailbox consumer (what prunes the sequences an
 * actor remembers as applied) after the partition acked something, not on a timer while it
 * is idle: a deployment's idle nodes sent the server a consumer-info request per partition
 * every second (32 a second at the default partition count), for floors that had not moved.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Ping = Message.define("test.floor-ping", Schema.Struct({ n: Schema.Int }), { description: "one message for a counter" })
const registry = Message.registry([Ping, DeadLetter.DeadLettered])

let handled = 0
const counter = Actor.make({
  type: "counter",
  accepts: [Ping],
  state: Schema.Struct({ count: Schema.Int }),
  initial: () => ({ count: 0 }),
  handle: (s, m) => Effect.sync(() => (Message.is(Ping)(m) ? (handled++, { count: s.count + 1 }) : s))
})

const PARTITIONS = 4
const REFRESH_MS = 100

layer(Runtime.layer({ partitions: PARTITIONS }), { timeout: 60_000, excludeTestServices: true })("ack floor reads", (it) => {
  it.scoped("an idle partition's floor is not read again; one that acked is read within the refresh interval", () =>
    Effect.gen(function* () {
      const { nc } = yield* NatsClient
      const { topology } = yield* Deployment.Deployment
      const subjects = topology.subjects
      // every consumer-info request of the mailbox consumers, by consumer name (`mbox-<partition>`)
      const reads: Array<{ readonly at: number; readonly consumer: string }> = []
      const sub = nc.subscribe(`$JS.API.CONSUMER.INFO.${subjects.streams.mailboxes}.>`, {
        callback: (_e, m) => void reads.push({ at: Date.now(), consumer: m.subject.slice(m.subject.lastIndexOf(".") + 1) })
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
      yield* Effect.promise(() => nc.flush())
      const between = (from: number, to: number) => reads.filter((r) => r.at >= from && r.at < to)

      yield* Node.start({ registry, agents: [], commands: [], actors: [counter], actorHost: { floorRefreshMs: REFRESH_MS } })
      // each partition's floor is read once when its consumption starts; then, idle, no more
      const partitionsRead = () => new Set(reads.map((r) => r.consumer)).size
      yield* Crm.waitFor("every partition's first floor read", Effect.sync(() => (partitionsRead() >= PARTITIONS ? true : undefined)))
      const idleFrom = Date.now() + 2 * REFRESH_MS
      yield* Effect.sleep(`${12 * REFRESH_MS} millis`)
      expect(between(idleFrom, Date.now())).toEqual([])

      // one message: its partition's floor is read after the ack, the others' are not
      const to = Address.actor("counter", "c1")
      const partition = subjects.partitionOf("counter", "c1")
      const sentAt = Date.now()
      yield* Runtime.send(registry, "t1", to, Ping, { n: 1 })
      yield* Crm.waitFor("the message handled", Effect.sync(() => (handled >= 1 ? true : undefined)))
      yield* Crm.waitFor("its partition's floor read", Effect.sync(() => (between(sentAt, Date.now()).length > 0 ? true : undefined)), 5_000)
      yield* Effect.sleep(`${12 * REFRESH_MS} millis`)
      const after = between(sentAt, Date.now())
      expect(new Set(after.map((r) => r.consumer))).toEqual(new Set([`mbox-${String(partition).padStart(3, "0")}`]))
      // read once or twice (an ack may land while a read is on its way), not at every tick
      expect(after.length).toBeLessThanOrEqual(2)
    }))
})
