/**
 * Sending on someone's behalf (`replyTo`): an actor asks agent A, which passes the request
 * on to agent B for the actor. B's reply goes to the actor, not to A; and when B fails past
 * its retries, the dead-letter notice goes to the actor too, so it learns that what it asked
 * for failed (invariant 6's escalation) even though it never sent to B itself.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Address, DeadLetter, Message } from "../../protocols/index.js"
import { Actor, Agent, Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as Runtime from "../fixtures/Runtime.js"

const Start = Message.define("test.start", Schema.Struct({ n: Schema.Int, fail: Schema.Boolean }), { description: "start" })
const Ask = Message.define("test.ask", Schema.Struct({ n: Schema.Int, fail: Schema.Boolean }), { description: "to A" })
const Pass = Message.define("test.pass", Schema.Struct({ n: Schema.Int, fail: Schema.Boolean }), { description: "A to B" })
const Answer = Message.define("test.answer", Schema.Struct({ n: Schema.Int, by: Schema.String }), { description: "B's reply" })

class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}

/** What the actor saw, per actor id. */
const seen = new Map<string, Array<string>>()
const note = (id: string, what: string) => seen.set(id, [...(seen.get(id) ?? []), what])

const Asker = Actor.make({
  type: "asker",
  accepts: [Start, Answer],
  state: Schema.Struct({ n: Schema.Int }),
  initial: () => ({ n: 0 }),
  handle: (s, m, ctx) =>
    Effect.sync(() => {
      if (Message.is(Start)(m)) ctx.send(Address.agent("a"), Ask, m.payload)
      if (Message.is(Answer)(m)) note(ctx.id, `answer ${m.payload.n} from ${m.envelope.from}`)
      return { n: s.n + 1 }
    }),
  onDeadLetter: (s, m, error, ctx) =>
    Effect.sync(() => {
      const record = error as { originalType?: string; receiver?: string }
      note(ctx.id, `failed ${record.originalType} at ${record.receiver} (notice from ${m.envelope.from})`)
      return s
    })
})

const agents = [
  Agent.make({
    name: "a",
    accepts: [Ask],
    handle: (m, ctx) =>
      Effect.sync(() => {
        const p = m.payload as typeof Ask.payload.Type
        ctx.send(Address.agent("b"), Pass, p, { replyTo: m.envelope.from })
      })
  }),
  Agent.make({
    name: "b",
    accepts: [Pass],
    supervision: { maxRetries: 1, initialDelay: "10 millis", maxDelay: "10 millis" },
    handle: (m, ctx) =>
      Effect.gen(function* () {
        const p = m.payload as typeof Pass.payload.Type
        if (p.fail) return yield* new Boom({ message: `b cannot do ${p.n}` })
        ctx.reply(Answer, { n: p.n, by: "b" })
      })
  })
]

const registry = Message.registry([Start, Ask, Pass, Answer, DeadLetter.DeadLettered])

layer(Runtime.layer({ partitions: 4 }), { timeout: 60_000, excludeTestServices: true })("replies on someone's behalf", (it) => {
  it.scoped("a passed-on request answers, and fails, to the actor that asked", () =>
    Effect.gen(function* () {
      const node = yield* Node.start({ registry, actors: [Asker], agents, commands: [] })
      yield* Runtime.send(registry, "t1", Address.actor("asker", "ok"), Start, { n: 1, fail: false })
      yield* Runtime.send(registry, "t1", Address.actor("asker", "bad"), Start, { n: 2, fail: true })

      yield* Crm.waitFor("both outcomes reach the actors", Effect.sync(() => (seen.has("ok") && seen.has("bad") ? true : undefined)))
      expect(seen.get("ok")).toEqual(["answer 1 from agent:b"])
      expect(seen.get("bad")).toEqual(["failed test.pass at agent:b (notice from agent:b)"])
      // B's failure is the only dead letter: a reply or notice sent back to A would have been
      // refused there (A does not accept them) as a second one
      expect(node.counters.deadLetters).toBe(1)
    })
  )
})
