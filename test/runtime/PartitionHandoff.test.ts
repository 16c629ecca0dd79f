/**
 * A node holds at most `bufferPerPartition` deliveries of a partition (asked for, queued
 * behind their actor or being handled): the rest wait in the stream, where whichever node
 * holds the partition next finds them. When the node hands the partition over, what it
 * holds and has not started goes back at once, so the next node handles everything well
 * inside the ack wait (a delivery lost in a client buffer would wait all of it).
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Schema, Scope } from "effect"
import type { Latch } from "effect/Effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Item = Message.define("test.handoff-item", Schema.Struct({ n: Schema.Int }), { description: "one item for a slow actor" })
const registry = Message.registry([Item, DeadLetter.DeadLettered])

const ACTORS = 4
const PER_ACTOR = 300
const BUFFER = 64
/** Long enough that a delivery lost in transit would time the test out. */
const ACK_WAIT_MS = 60_000

/** What each node handled: `<actor>/<n>`. */
const handled = new Map<string, Set<string>>()
const note = (node: string, key: string) => handled.set(node, (handled.get(node) ?? new Set()).add(key))
const all = () => new Set([...handled.values()].flatMap((s) => [...s]))

/** `gate`, when given, holds every handler until it opens. */
const sink = (node: string, gate?: Latch) =>
  Actor.make({
    type: "sink",
    accepts: [Item],
    state: Schema.Struct({ count: Schema.Int }),
    initial: () => ({ count: 0 }),
    handle: (s, m, ctx) =>
      Effect.gen(function* () {
        if (!Message.is(Item)(m)) return s
        if (gate) yield* gate.await
        yield* Effect.sleep("5 millis")
        note(node, `${ctx.id}/${m.payload.n}`)
        return { count: s.count + 1 }
      })
  })

layer(Runtime.layer({ partitions: 1 }), { timeout: 90_000, excludeTestServices: true })("partition handoff", (it) => {
  it.scoped("a node holds a bounded share of a partition; handing it over loses nothing", () =>
    Effect.gen(function* () {
      const { jsm } = yield* NatsClient
      const { topology } = yield* Deployment.Deployment
      const mailboxes = topology.subjects.streams.mailboxes
      const options = { registry, agents: [], commands: [], actorHost: { maxBatch: 1, bufferPerPartition: BUFFER } } as const

      // node a handles nothing until everything is published, so however slowly the
      // publishing goes (a loaded CI machine), most of it is still in the stream below
      const published = yield* Effect.makeLatch(false)
      const scopeA = yield* Scope.make()
      yield* Node.start({ ...options, actors: [sink("a", published)] }).pipe(Scope.extend(scopeA))
      const [consumer] = yield* Effect.promise(() => jsm.consumers.list(mailboxes).next())
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, consumer!.name, { ack_wait: ACK_WAIT_MS * 1_000_000 }))
      for (let n = 0; n < PER_ACTOR; n++) {
        for (let a = 0; a < ACTORS; a++) yield* Runtime.send(registry, "t1", Address.actor("sink", `s${a}`), Item, { n })
      }
      yield* published.open
      yield* Crm.waitFor("node a to be busy", Effect.sync(() => ((handled.get("a")?.size ?? 0) >= 40 ? true : undefined)))

      // node a holds no more than its bound; the rest is still the stream's
      const info = yield* Effect.promise(() => jsm.consumers.info(mailboxes, consumer!.name))
      expect(info.num_ack_pending).toBeLessThanOrEqual(BUFFER)
      expect(info.num_pending).toBeGreaterThan(0)

      yield* Scope.close(scopeA, Exit.void)
      const handedOverAt = Date.now()
      yield* Node.start({ ...options, actors: [sink("b")] })
      // node b's start provisions the consumer with the deployment's ack wait again
      yield* Effect.promise(() => jsm.consumers.update(mailboxes, consumer!.name, { ack_wait: ACK_WAIT_MS * 1_000_000 }))
      yield* Crm.waitFor(
        "every item handled",
        Effect.sync(() => (all().size === ACTORS * PER_ACTOR ? true : undefined)),
        ACK_WAIT_MS / 2
      )
      expect(Date.now() - handedOverAt).toBeLessThan(ACK_WAIT_MS / 2)
      expect(handled.get("b")?.size ?? 0).toBeGreaterThan(0)
    })
  )
})
