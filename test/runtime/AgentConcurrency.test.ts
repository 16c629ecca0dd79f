/**
 * How many messages an agent handles at once on a node: its definition's `concurrency`,
 * raised or lowered per node by `NEXUS_AGENT_CONCURRENCY` (or the node option), as an
 * operator does for agents that wait on remote models (seconds per call) rather than CPU.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Exit, Schema, Scope } from "effect"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Agent, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Job = Message.define("test.concurrency-job", Schema.Struct({ n: Schema.Int }), { description: "one slow job" })
const registry = Message.registry([Job, DeadLetter.DeadLettered])

/** An agent whose jobs take 150 ms, counting how many run at once. */
const slow = () => {
  const seen = { running: 0, max: 0, done: 0 }
  const agent = Agent.make({
    name: "slow",
    accepts: [Job],
    concurrency: 2,
    handle: () =>
      Effect.gen(function* () {
        seen.max = Math.max(seen.max, ++seen.running)
        yield* Effect.sleep("150 millis")
        seen.running--
        seen.done++
      })
  })
  return { agent, seen }
}

/** Runs `jobs` jobs through a node started with `start`; returns the most that ran at once. */
const maxAtOnce = (jobs: number, start: (agent: ReturnType<typeof slow>["agent"]) => Effect.Effect<unknown, unknown, any>) =>
  Effect.gen(function* () {
    const { agent, seen } = slow()
    const scope = yield* Scope.make()
    yield* start(agent).pipe(Scope.extend(scope))
    for (let n = 0; n < jobs; n++) yield* Runtime.send(registry, "t1", Address.agent("slow"), Job, { n })
    yield* Crm.waitFor("every job done", Effect.sync(() => (seen.done === jobs ? true : undefined)))
    yield* Scope.close(scope, Exit.void)
    return seen.max
  })

describe("parseAgentConcurrency", () => {
  it("reads agent=n entries and one bare number for the others", () => {
    expect(Node.parseAgentConcurrency("content=256, analyzer=128")).toEqual(Either.right({ content: 256, analyzer: 128 }))
    expect(Node.parseAgentConcurrency("64,planner=8")).toEqual(Either.right({ "*": 64, planner: 8 }))
    expect(Node.parseAgentConcurrency("")).toEqual(Either.right({}))
  })
  it("refuses what is not a positive integer, and a name given twice", () => {
    for (const bad of ["content=0", "content=-3", "content=1.5", "content=many", "0", "content=2,content=3", "a b=3", "content=1=2", "=4"]) {
      expect(Either.isLeft(Node.parseAgentConcurrency(bad)), bad).toBe(true)
    }
  })
})

layer(Runtime.layer(), { timeout: 60_000, excludeTestServices: true })("agent concurrency on a node", (it) => {
  it.scoped("the definition's by default; the node option's or NEXUS_AGENT_CONCURRENCY's when set", () =>
    Effect.gen(function* () {
      const options = { registry, actors: [], commands: [] } as const
      expect(yield* maxAtOnce(12, (agent) => Node.start({ ...options, agents: [agent] }))).toBe(2)
      expect(yield* maxAtOnce(24, (agent) => Node.start({ ...options, agents: [agent], agentConcurrency: { slow: 8 } }))).toBe(8)
      const fromEnv = ConfigProvider.fromMap(new Map([["NEXUS_AGENT_CONCURRENCY", "3,other=9"]]))
      expect(yield* maxAtOnce(12, (agent) => Node.start({ ...options, agents: [agent] }).pipe(Effect.withConfigProvider(fromEnv))))
        .toBe(3)
    })
  )
})
