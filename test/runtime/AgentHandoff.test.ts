/**
 * A node that drains gives its agents' work back without loss: the pulls it had asked for
 * are released, not closed, so whatever the server was already sending them goes back for
 * another node at once (a delivery dropped with a closed pull would wait out the whole ack
 * wait). The same holds for the command router, which consumes the same way.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Schema, Scope } from "effect"
import type { Latch } from "effect/Effect"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Agent, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Job = Message.define("test.handoff-job", Schema.Struct({ n: Schema.Int }), { description: "one job for a slow agent" })
const registry = Message.registry([Job, DeadLetter.DeadLettered])

const JOBS = 3_000
/** Long enough that a delivery dropped in transit would time the test out. */
const ACK_WAIT_MS = 60_000

/** What each node handled. */
const handled = new Map<string, Set<number>>()
const all = () => new Set([...handled.values()].flatMap((s) => [...s]))

/** `gate`, when given, holds every handler until it opens. */
const worker = (node: string, gate?: Latch) =>
  Agent.make({
    name: "worker",
    accepts: [Job],
    concurrency: 64,
    handle: (m) =>
      Effect.gen(function* () {
        if (!Message.is(Job)(m)) return
        if (gate) yield* gate.await
        yield* Effect.sleep("2 millis")
        handled.set(node, (handled.get(node) ?? new Set()).add(m.payload.n))
      })
  })

layer(Runtime.layer(), { timeout: 120_000, excludeTestServices: true })("agent handoff", (it) => {
  it.scoped("a draining node's agent work goes to the next node at once, none of it waits out the ack wait", () =>
    Effect.gen(function* () {
      const { jsm } = yield* NatsClient
      const { topology, subjects } = yield* Deployment.Deployment
      const work = subjects.streams.work
      const durable = topology.workConsumer("worker").durable_name
      const longAckWait = Effect.promise(() => jsm.consumers.update(work, durable, { ack_wait: ACK_WAIT_MS * 1_000_000 }))
      const options = { registry, actors: [], commands: [] } as const

      const published = yield* Effect.makeLatch(false)
      const scopeA = yield* Scope.make()
      yield* Node.start({ ...options, agents: [worker("a", published)] }).pipe(Scope.extend(scopeA))
      yield* longAckWait
      for (let n = 0; n < JOBS; n++) yield* Runtime.send(registry, "t1", Address.agent("worker"), Job, { n })
      yield* published.open
      // drain node a while its pulls are busy bringing more
      yield* Crm.waitFor("node a to be busy", Effect.sync(() => ((handled.get("a")?.size ?? 0) >= 300 ? true : undefined)))
      yield* Scope.close(scopeA, Exit.void)
      const drainedAt = Date.now()
      expect(handled.get("a")!.size).toBeLessThan(JOBS)

      yield* Node.start({ ...options, agents: [worker("b")] })
      yield* longAckWait // node b's start provisions the consumer with the deployment's ack wait again
      yield* Crm.waitFor("every job handled", Effect.sync(() => (all().size === JOBS ? true : undefined)), ACK_WAIT_MS / 2)
      expect(Date.now() - drainedAt, "well inside the ack wait").toBeLessThan(ACK_WAIT_MS / 2)
      expect(handled.get("b")?.size ?? 0).toBeGreaterThan(0)
    })
  )
})
