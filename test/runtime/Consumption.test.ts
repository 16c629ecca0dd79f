/**
 * The bounded consumption on a real JetStream consumer: it never holds more messages than
 * it has free handler slots, so a worker whose handlers are all busy leaves the rest of
 * the queue to other workers, and no message waits in a client buffer past its ack wait
 * (which made the server hand it out twice). Handlers here are slower than the ack wait
 * and keep only their own messages alive with in-progress acks, as the agent host does.
 */
import { describe, expect, it } from "@effect/vitest"
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream"
import { connect, nanos } from "@nats-io/transport-node"
import { Effect, Option } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as LocalServer from "../../nats/LocalServer.js"
import * as Consumption from "../../runtime/internal/Consumption.js"
import { randomPrefix } from "../fixtures/Nats.js"
import { freePorts } from "../fixtures/NatsCluster.js"
import * as StatusDroppingProxy from "../fixtures/StatusDroppingProxy.js"

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222"
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A nats-server with JetStream of its own, which the test can freeze (SIGSTOP). */
const ownServer = async () => {
  const [port] = await freePorts(1)
  const dir = mkdtempSync(join(tmpdir(), "nexus-consumption-"))
  const child = spawn(Option.getOrThrow(LocalServer.findBinary()), ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" })
  while (!(await Effect.runPromise(LocalServer.answers("127.0.0.1", port!)))) await sleep(50)
  return {
    url: `nats://127.0.0.1:${port}`,
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
    close: () => {
      child.kill("SIGKILL")
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A work-queue stream with one durable pull consumer whose ack wait is `ackWaitMs`. */
const setup = async (ackWaitMs: number, servers = url) => {
  const prefix = randomPrefix()
  const nc = await connect({ servers })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: prefix, subjects: [`${prefix}.>`], retention: RetentionPolicy.Workqueue })
  await jsm.consumers.add(prefix, { durable_name: "work", ack_policy: AckPolicy.Explicit, ack_wait: nanos(ackWaitMs), max_deliver: -1 })
  const js = jetstream(nc)
  const consumer = await js.consumers.get(prefix, "work")
  return {
    prefix,
    nc,
    js,
    consumer,
    info: () => jsm.consumers.info(prefix, "work"),
    close: async () => {
      await jsm.streams.delete(prefix).catch(() => undefined)
      await nc.close()
    }
  }
}

/**
 * A consumption of `env`'s consumer with `slots` handlers that ack at once, pulls expiring
 * after `expiresMs` and a round trip on the connection (so pulls may lapse): what it handled
 * and the errors it reported.
 */
const acking = (env: Awaited<ReturnType<typeof setup>>, slots: number, expiresMs: number) => {
  const handled: Array<string> = []
  const errors: Array<unknown> = []
  const consumption = Consumption.startBounded(
    env.consumer,
    slots,
    (msg, done) => {
      handled.push(msg.string())
      msg.ack()
      done()
    },
    (e) => errors.push(e),
    { expiresMs, ping: () => env.nc.flush() }
  )
  return { handled, errors, consumption }
}

describe("Consumption.startBounded (real NATS)", () => {
  it("holds no more messages than free slots: handlers slower than the ack wait see every message once", { timeout: 30_000 }, async () => {
    const ACK_WAIT_MS = 1_000
    const HOLD_MS = 1_500
    const CONCURRENCY = 3
    const N = 12
    const env = await setup(ACK_WAIT_MS)
    try {
      for (let i = 0; i < N; i++) await env.js.publish(`${env.prefix}.job`, String(i))
      const deliveries: Array<{ n: string; redelivered: boolean }> = []
      let running = 0
      let maxRunning = 0
      let maxAckPending = 0
      const consumption = Consumption.startBounded(env.consumer, CONCURRENCY, (msg, done) => {
        deliveries.push({ n: msg.string(), redelivered: msg.info.redelivered })
        maxRunning = Math.max(maxRunning, ++running)
        const heartbeat = setInterval(() => msg.working(), 300)
        setTimeout(() => {
          clearInterval(heartbeat)
          msg.ack()
          running--
          done()
        }, HOLD_MS)
      })
      // what the server counts as handed out and not yet acknowledged, while the work runs
      const sampling = (async () => {
        while (deliveries.length < N || running > 0) {
          maxAckPending = Math.max(maxAckPending, (await env.info()).num_ack_pending)
          await sleep(100)
        }
      })()
      await sampling
      await consumption.idle()
      await consumption.stop()

      expect(maxRunning).toBe(CONCURRENCY)
      expect(maxAckPending, "the server never handed this worker more than its free slots").toBeLessThanOrEqual(CONCURRENCY)
      expect(deliveries.filter((d) => d.redelivered), "no message went past its ack wait in a buffer").toEqual([])
      expect(deliveries.map((d) => Number(d.n)).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
      const info = await env.info()
      expect(info.num_pending + info.num_ack_pending).toBe(0)
    } finally {
      await env.close()
    }
  })

  it("a second worker takes what the first, all slots busy, leaves in the queue", { timeout: 30_000 }, async () => {
    const env = await setup(5_000)
    try {
      const N = 8
      for (let i = 0; i < N; i++) await env.js.publish(`${env.prefix}.job`, String(i))
      const byWorker: Record<string, Array<string>> = { busy: [], free: [] }
      const releaseBusy: Array<() => void> = []
      // the busy worker: one slot, its handler waits until released
      const busy = Consumption.startBounded(env.consumer, 1, (msg, done) => {
        byWorker.busy!.push(msg.string())
        releaseBusy.push(() => {
          msg.ack()
          done()
        })
      })
      while (byWorker.busy!.length === 0) await sleep(20)
      // the free worker, on the same consumer, finishes each message at once
      const free = Consumption.startBounded(env.consumer, 4, (msg, done) => {
        byWorker.free!.push(msg.string())
        msg.ack()
        done()
      })
      while (byWorker.free!.length < N - 1) await sleep(20)
      expect(byWorker.busy, "the busy worker held only the message it works on").toHaveLength(1)
      for (const r of releaseBusy) r()
      await busy.idle()
      await Promise.all([busy.stop(), free.stop()])
      expect([...byWorker.busy!, ...byWorker.free!].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i))
    } finally {
      await env.close()
    }
  })

  it("release: what the server already sent goes back to the next consumer instead of waiting out its ack wait", { timeout: 60_000 }, async () => {
    const ACK_WAIT_MS = 60_000
    const N = 4_000
    const env = await setup(ACK_WAIT_MS)
    try {
      await Promise.all(Array.from({ length: N }, (_, i) => env.js.publish(`${env.prefix}.job`, String(i))))
      const handled = new Set<string>()
      let afterRelease = 0
      let released = false
      const worker = (name: string) =>
        Consumption.startBounded(
          env.consumer,
          256,
          (msg, done) => {
            if (name === "a" && released) afterRelease++
            handled.add(msg.string())
            // a little work per message, so deliveries keep arriving while some are handled
            setImmediate(() => {
              msg.ack()
              done()
            })
          },
          () => {},
          { expiresMs: 2_000 }
        )
      const a = worker("a")
      while (handled.size < 500) await sleep(1)
      released = true
      await a.release()
      const b = worker("b")
      const startedAt = Date.now()
      while (handled.size < N && Date.now() - startedAt < ACK_WAIT_MS / 3) await sleep(50)
      expect(handled.size, "every message handled well inside its ack wait").toBe(N)
      expect(afterRelease, "the released consumer handled nothing after its release").toBe(0)
      await a.ended()
      await b.stop()
    } finally {
      await env.close()
    }
  })

  it("a pull the server ends late is no failure, and loses nothing", { timeout: 60_000 }, async () => {
    // a server of its own, frozen past the pull's expiry: neither its idle heartbeats nor
    // the end of the pull come (as under load, when nats-server 2.9 sometimes ends a partly
    // filled pull seconds late), and the client's heartbeat check gives the pull up. That
    // is reported as no failure, and the next pulls lose nothing to the ack wait. While the
    // server is frozen no pull goes out: none is replaced at its expiry (`ping` waits for the
    // server), and after a failed one the next waits for the server to answer. A pull sent
    // to the frozen server could be given up by the client's heartbeat check just after the
    // server wakes and delivers to it (in 1 run in 8 a message then waited out its ack wait).
    const ACK_WAIT_MS = 30_000
    const EXPIRES_MS = 1_000
    const server = await ownServer()
    const env = await setup(ACK_WAIT_MS, server.url)
    let frozen = false
    let pulls = 0
    let pulledWhileFrozen = 0
    const fetch = env.consumer.fetch.bind(env.consumer)
    env.consumer.fetch = (opts) => {
      pulls++
      if (frozen) pulledWhileFrozen++
      return fetch(opts)
    }
    try {
      const { handled, errors, consumption } = acking(env, 8, EXPIRES_MS)
      // a pull of 8 is open and gets 2, and a pull of 2 goes out for the slots they free
      for (let i = 0; i < 2; i++) await env.js.publish(`${env.prefix}.job`, `before-${i}`)
      while (handled.length < 2 || pulls < 2) await sleep(5)
      await env.nc.flush()
      server.pause()
      frozen = true
      await sleep(EXPIRES_MS * 2.5)
      frozen = false
      server.resume()
      const N = 20
      const resumedAt = Date.now()
      for (let i = 0; i < N; i++) await env.js.publish(`${env.prefix}.job`, `after-${i}`)
      while (handled.length < N + 2 && Date.now() - resumedAt < ACK_WAIT_MS / 3) await sleep(20)
      expect(new Set(handled).size, "every message handled, well inside its ack wait").toBe(N + 2)
      expect(handled.length, "each once").toBe(N + 2)
      expect(errors.map(String), "a pull that ended late is not a failure").toEqual([])
      expect(consumption.lapsed(), "no pull replaced while the server was frozen").toBe(0)
      expect(pulledWhileFrozen, "no pull sent while the server was frozen").toBe(0)
      await consumption.stop()
    } finally {
      server.resume()
      await env.close()
      server.close()
    }
  })

  it("a pull the server ends without a word is replaced at its expiry, and loses nothing", { timeout: 30_000 }, async () => {
    // a proxy drops the server's 408 statuses: a pull that expires at the server then ends
    // without a word (as nats-server 2.9 sometimes ends a partly filled pull under load), and
    // the client would notice only when two heartbeats are missed. One slot: while the
    // silent pull counts as outstanding, no other pull goes out.
    const target = new URL(url)
    const proxy = await StatusDroppingProxy.start(target.hostname, Number(target.port || 4222), 408)
    const env = await setup(30_000, proxy.url)
    try {
      const { handled, errors, consumption } = acking(env, 1, 1_000)
      // the first pull gets nothing and expires at the server, silently
      await sleep(1_600)
      await env.js.publish(`${env.prefix}.job`, "after-expiry")
      const publishedAt = Date.now()
      while (handled.length < 1 && Date.now() - publishedAt < 10_000) await sleep(10)
      expect(proxy.dropped(), "the server's expiry statuses were dropped").toBeGreaterThan(0)
      expect(consumption.lapsed(), "the silent pull was replaced at its expiry").toBeGreaterThan(0)
      expect(handled, "the message was handled, once").toEqual(["after-expiry"])
      expect(errors.map(String), "a pull that ended silently is not a failure").toEqual([])
      await consumption.stop()
    } finally {
      await env.close()
      await proxy.close()
    }
  })
})
