/**
 * Supervision (invariant 6): a failing handler is retried with growing backoff, then its
 * message is dead-lettered with the error, the actor can escalate, and the node keeps
 * serving every other actor meanwhile. A transient failure is retried to success.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Deployment } from "../../nats/index.js"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Work = Message.define("test.work", Schema.Struct({ n: Schema.Int, failTimes: Schema.Int }), { description: "work" })
const Failed = Message.define("test.failed", Schema.Struct({ n: Schema.Int, reason: Schema.String }), { description: "escalation" })

class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}

/** Attempt timestamps per (actor, n). */
const attempts = new Map<string, Array<number>>()

const Worker = Actor.make({
  type: "worker",
  accepts: [Work],
  state: Schema.Struct({ done: Schema.Array(Schema.Int), failed: Schema.Array(Schema.Int) }),
  initial: () => ({ done: [], failed: [] }),
  supervision: { maxRetries: 4, initialDelay: "50 millis", maxDelay: "2 seconds" },
  handle: (s, m, ctx) =>
    Effect.gen(function* () {
      if (!Message.is(Work)(m)) return s
      const key = `${ctx.id}/${m.payload.n}`
      const seen = attempts.get(key) ?? []
      seen.push(Date.now())
      attempts.set(key, seen)
      if (seen.length <= m.payload.failTimes) return yield* new Boom({ message: `attempt ${seen.length} of ${key} failed` })
      return { ...s, done: [...s.done, m.payload.n] }
    }),
  onDeadLetter: (s, m, error, ctx) =>
    Effect.sync(() => {
      const n = Message.is(Work)(m) ? m.payload.n : -1
      ctx.send(Address.topic("worker", ctx.id), Failed, { n, reason: String((error as { message?: string }).message) })
      return { ...s, failed: [...s.failed, n] }
    })
})

const registry = Message.registry([Work, Failed, DeadLetter.DeadLettered])

layer(Runtime.layer({ partitions: 4 }), { timeout: 60_000, excludeTestServices: true })("supervision", (it) => {
  it.scoped("retries with backoff, dead-letters with the error, escalates, and keeps serving others", () =>
    Effect.gen(function* () {
      const node = yield* Node.start({ registry, actors: [Worker], agents: [], commands: [] })
      const { subjects } = yield* Deployment.Deployment
      const bad = Address.actor("worker", "bad")
      // one message that always fails, then one behind it for the same actor, and 50 for others
      yield* Runtime.send(registry, "t1", bad, Work, { n: 1, failTimes: 99 })
      yield* Runtime.send(registry, "t1", bad, Work, { n: 2, failTimes: 0 })
      for (let i = 0; i < 50; i++) yield* Runtime.send(registry, "t1", Address.actor("worker", `ok${i}`), Work, { n: i, failTimes: 0 })
      // a transient failure: fails twice, then succeeds
      yield* Runtime.send(registry, "t1", Address.actor("worker", "flaky"), Work, { n: 7, failTimes: 2 })

      const dead = yield* Crm.waitFor(
        "the dead letter of worker/bad",
        Effect.map(Crm.readAll(subjects.streams.deadLetters, subjects.deadLetter("t1", ">")), (r) => (r.length > 0 ? r : undefined))
      )
      // others were served while the bad message was being retried
      const badAttempts = attempts.get("bad/1")!
      const othersDone = [...attempts.entries()].filter(([k]) => k.startsWith("ok")).map(([, v]) => v[0]!)
      expect(othersDone.length).toBe(50)
      expect(Math.max(...othersDone)).toBeLessThan(badAttempts[badAttempts.length - 1]!)

      // 1 try + 4 retries, with growing gaps (exponential backoff, jittered)
      expect(badAttempts.length).toBe(5)
      const gaps = badAttempts.slice(1).map((t, i) => t - badAttempts[i]!)
      expect(gaps[0]!).toBeGreaterThanOrEqual(20)
      expect(gaps[3]!).toBeGreaterThan(gaps[0]!)

      // the dead letter names the reason, the error, the receiver, and keeps the original bytes
      expect(dead.length).toBe(1)
      const record = dead[0]!.json.payload
      expect(record.reason).toBe("HandlerFailed")
      expect(record.error.message).toContain("attempt 5 of bad/1 failed")
      expect(record.receiver).toBe("actor:worker:bad")
      expect(record.originalType).toBe("test.work")
      const original = JSON.parse(Buffer.from(record.dataBase64, "base64").toString())
      expect(original.payload).toEqual({ n: 1, failTimes: 99 })

      // the escalation went out, and the message behind the bad one was handled after it
      const escalations = yield* Crm.waitFor(
        "escalation event",
        Effect.map(Crm.readAll(subjects.streams.events, subjects.eventsOf("t1", "worker", "bad")), (r) => (r.length > 0 ? r : undefined))
      )
      expect(escalations[0]!.json.payload).toEqual({ n: 1, reason: "attempt 5 of bad/1 failed" })
      yield* Crm.waitFor("bad/2 handled", Effect.sync(() => (attempts.get("bad/2") ? true : undefined)))
      expect(attempts.get("bad/2")![0]!).toBeGreaterThan(badAttempts[4]!)

      // the transient failure succeeded on its third attempt and was not dead-lettered
      yield* Crm.waitFor("flaky handled", Effect.sync(() => ((attempts.get("flaky/7")?.length ?? 0) >= 3 ? true : undefined)))
      expect(attempts.get("flaky/7")!.length).toBe(3)
      yield* Crm.waitFor("all handled", Effect.sync(() => (node.counters.handled >= 53 ? true : undefined)))
      expect(node.counters.deadLetters).toBe(1)
      expect(node.counters.retries).toBe(4 + 2)
    })
  )
})
