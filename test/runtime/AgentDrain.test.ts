/**
 * Draining a node with a long-running agent handler: the handler gets its grace period,
 * then its message is nak'd and its fiber interrupted, so the drain does not wait for the
 * handler and another node (a second node in this process, on the same work queue) gets
 * the message at once, instead of after the ack wait.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Schema, Scope } from "effect"
import { Deployment, Topology } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Agent, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Slow = Message.define("test.slow-work", Schema.Struct({ n: Schema.Int }), { description: "work that takes long on its first node" })
const registry = Message.registry([Slow, DeadLetter.DeadLettered])

interface Seen {
  readonly node: string
  readonly n: number
  readonly at: number
}
const seen: Array<Seen> = []
const interrupted: Array<{ readonly node: string; readonly at: number }> = []
const finished: Array<Seen> = []

/** The `slow` agent as node `node` runs it: on node `a` it never finishes by itself. */
const slowAgent = (node: string) =>
  Agent.make({
    name: "slow",
    accepts: [Slow],
    concurrency: 4,
    handle: (m) =>
      Effect.gen(function* () {
        if (!Message.is(Slow)(m)) return
        seen.push({ node, n: m.payload.n, at: Date.now() })
        if (node === "a") {
          yield* Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push({ node, at: Date.now() }))))
        }
        finished.push({ node, n: m.payload.n, at: Date.now() })
      })
  })

const GRACE_MS = 1_000

layer(Runtime.layer({ partitions: 2 }), { timeout: 60_000, excludeTestServices: true })("agent drain", (it) => {
  it.scoped("a handler still running after the grace is interrupted and its message nak'd; another node gets it at once", () =>
    Effect.gen(function* () {
      const { jsm } = yield* NatsClient
      const { subjects, topology } = yield* Deployment.Deployment
      const options = { registry, actors: [], commands: [], routeCommands: false, drainTimeout: "15 seconds", agentGrace: `${GRACE_MS} millis` } as const

      const scopeA = yield* Scope.make()
      yield* Node.start({ ...options, agents: [slowAgent("a")] }).pipe(Scope.extend(scopeA))
      yield* Runtime.send(registry, "t1", Address.agent("slow"), Slow, { n: 1 })
      yield* Crm.waitFor("node a to start handling the message", Effect.sync(() => (seen.some((s) => s.node === "a") ? true : undefined)))

      const b = yield* Node.start({ ...options, agents: [slowAgent("b")] })
      // b's consumer pulls too, but the only message is a's (in-progress acks keep it there)
      yield* Effect.sleep("1500 millis")
      expect(seen.filter((s) => s.node === "b"), "b must not see the message while a works on it").toEqual([])

      const drainStart = Date.now()
      yield* Scope.close(scopeA, Exit.void)
      const drainMs = Date.now() - drainStart
      // the drain waited for the grace, not for the handler (which never ends)
      expect(interrupted.map((i) => i.node), "a's handler is interrupted at drain").toEqual(["a"])
      expect(interrupted[0]!.at - drainStart, "a's handler had its grace period").toBeGreaterThanOrEqual(GRACE_MS - 50)
      expect(drainMs, "drain is bounded by the grace, not blocked by the handler").toBeLessThan(GRACE_MS + 6_000)
      expect(finished.filter((f) => f.node === "a")).toEqual([])

      const atB = yield* Crm.waitFor(
        "node b to get the handed-back message",
        Effect.sync(() => finished.find((f) => f.node === "b" && f.n === 1)),
        20_000
      )
      const afterHandBack = atB.at - interrupted[0]!.at
      console.log(`drain took ${drainMs} ms; b got the message ${afterHandBack} ms after a handed it back`)
      // promptly: well under the ack wait after which an abandoned message would move
      expect(afterHandBack, `redelivered after ${afterHandBack} ms`).toBeLessThan(Topology.defaultDelivery.ackWaitMs / 2)
      expect(b.counters.redeliveries, "b saw a redelivery").toBe(1)

      // b acked it: nothing is pending or unacknowledged on the work queue
      const info = yield* Crm.waitFor(
        "the work queue to be empty",
        Effect.map(
          Effect.promise(() => jsm.consumers.info(subjects.streams.work, topology.workConsumer("slow").durable_name)),
          (i) => (i.num_pending === 0 && i.num_ack_pending === 0 ? i : undefined)
        )
      )
      expect(info.num_redelivered).toBe(0)
      expect(seen.map((s) => s.node)).toEqual(["a", "b"])
    })
  )
})
