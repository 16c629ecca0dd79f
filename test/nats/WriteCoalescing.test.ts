/**
 * Write coalescing on a real connection: what a chain of microtasks publishes goes out in
 * two socket writes (counted on the connection's own socket: the turn's first at once, the
 * rest at the turn's end), where the client alone writes once per microtask; a lone message
 * is not delayed; nothing is lost or reordered; a burst past the client's threshold is
 * still written at once; requests, JetStream acks and `flush` work as before. Fails if a
 * client upgrade removes the hook (the connection would then say it is not coalesced).
 */
import { describe, expect, it } from "@effect/vitest"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Effect } from "effect"
import { connectWith } from "../../nats/NatsClient.js"
import { coalesceWrites } from "../../nats/WriteCoalescing.js"
import { randomPrefix } from "../fixtures/Nats.js"

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222"

/** Counts the writes on the connection's socket from now on. */
const countWrites = (nc: NatsConnection) => {
  const socket = (nc as unknown as { protocol: { transport: { socket: { write: (...a: Array<unknown>) => boolean } } } }).protocol.transport.socket
  const write = socket.write.bind(socket)
  const counter = { writes: 0 }
  socket.write = (...a: Array<unknown>) => {
    counter.writes++
    return write(...a)
  }
  return counter
}

/** Publishes `n` messages on `subject`, one per microtask (as a chain of promise continuations does). */
const publishChain = async (nc: NatsConnection, subject: string, n: number) => {
  for (let i = 0; i < n; i++) {
    nc.publish(subject, String(i))
    await Promise.resolve()
  }
}

/** Receives `n` messages on `subject` (subscribed on its own connection), in arrival order. */
const receive = async (subject: string, n: number) => {
  const sub = await connect({ servers: url })
  const got: Array<string> = []
  const done = new Promise<void>((resolve) =>
    sub.subscribe(subject, {
      callback: (_e, m) => {
        got.push(m.string())
        if (got.length === n) resolve()
      }
    })
  )
  await sub.flush()
  return { got, done: done.then(() => sub.close()) }
}

const connectCoalesced = () => Effect.runPromise(connectWith([url], "write-coalescing-test"))

describe("WriteCoalescing (real NATS)", () => {
  it("the runtime's connections coalesce; a microtask chain of publishes is two writes (the turn's first, then the rest), in order, nothing lost", async () => {
    const h = await connectCoalesced()
    try {
      expect(h.writesCoalesced, "the installed client has the hook").toBe(true)
      const subject = `${randomPrefix()}.chain`
      const r = await receive(subject, 200)
      const counter = countWrites(h.nc)
      await publishChain(h.nc, subject, 200)
      await new Promise((resolve) => setImmediate(resolve))
      expect(counter.writes).toBeLessThanOrEqual(2)
      await r.done
      expect(r.got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)))
    } finally {
      await h.nc.close()
    }
  })

  it("a lone message is written at once, not at the end of the turn", async () => {
    const h = await connectCoalesced()
    try {
      const subject = `${randomPrefix()}.lone`
      const r = await receive(subject, 1)
      await new Promise((resolve) => setImmediate(resolve))
      const counter = countWrites(h.nc)
      h.nc.publish(subject, "only")
      await Promise.resolve() // the client writes from a microtask
      await Promise.resolve()
      expect(counter.writes, "written before the turn ended").toBe(1)
      await r.done
      expect(r.got).toEqual(["only"])
    } finally {
      await h.nc.close()
    }
  })

  it("without it the client writes once per microtask (what it saves)", async () => {
    const nc = await connect({ servers: url })
    try {
      const counter = countWrites(nc)
      await publishChain(nc, `${randomPrefix()}.plain`, 200)
      await nc.flush()
      expect(counter.writes).toBeGreaterThanOrEqual(150)
    } finally {
      await nc.close()
    }
  })

  it("a burst past the client's threshold is written within the turn (memory stays bounded)", async () => {
    const h = await connectCoalesced()
    try {
      const subject = `${randomPrefix()}.burst`
      const r = await receive(subject, 200)
      const counter = countWrites(h.nc)
      const kib = "x".repeat(1024)
      for (let i = 0; i < 200; i++) h.nc.publish(subject, `${i}:${kib}`)
      // 200 KiB published synchronously: the 32 KiB threshold wrote most of it already
      expect(counter.writes).toBeGreaterThanOrEqual(5)
      await r.done
      expect(r.got.map((s) => Number(s.split(":")[0]))).toEqual(Array.from({ length: 200 }, (_, i) => i))
    } finally {
      await h.nc.close()
    }
  })

  it("requests, JetStream publish acks and flush work on a coalesced connection", async () => {
    const h = await connectCoalesced()
    const prefix = randomPrefix()
    const stream = `${prefix.toUpperCase()}_WC`
    try {
      const responder = h.nc.subscribe(`${prefix}.echo`, { callback: (_e, m) => void m.respond(`re:${m.string()}`) })
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => h.nc.request(`${prefix}.echo`, String(i), { timeout: 5_000 })))
      expect(answers.map((m) => m.string())).toEqual(Array.from({ length: 50 }, (_, i) => `re:${i}`))
      responder.unsubscribe()
      await h.jsm.streams.add({ name: stream, subjects: [`${prefix}.js.>`] })
      const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => h.js.publish(`${prefix}.js.${i % 4}`, String(i))))
      expect(acks.map((a) => a.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
      await h.nc.flush()
      expect((await h.jsm.streams.info(stream)).state.messages).toBe(100)
    } finally {
      await h.jsm.streams.delete(stream).catch(() => false)
      await h.nc.close()
    }
  })

  it("an object without the client's shape is left alone", () => {
    const fake = { protocol: { flushPending: 1 } } as unknown as NatsConnection
    expect(coalesceWrites(fake)).toBe(false)
    expect((fake as unknown as { protocol: { flushPending: unknown } }).protocol.flushPending).toBe(1)
  })
})
