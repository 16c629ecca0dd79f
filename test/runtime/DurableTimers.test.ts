/**
 * Durable timers: the scheduler agent's deferrals wait in its JetStream work queue (a nak
 * with a delay per hop), not in a node's memory. A timer fires once, at its time; it
 * survives a SIGKILLed worker process and a restarted NATS server; and timers overdue when
 * the scheduler starts fire at no more than the node's rate, each once (two with the same
 * contact and token fire once). Everything is asserted from the `StepDue` messages stored
 * in the mailbox stream (no actor consumes them here) and from the consumer's state.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it, layer } from "@effect/vitest"
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import { Duration, Effect, Option } from "effect"
import * as Agents from "../../actors/Agents.js"
import { Deployment, Provision, Topology } from "../../nats/index.js"
import * as LocalServer from "../../nats/LocalServer.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, DeadLetter, Dispatch, Ids, Message } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import * as Crm from "../fixtures/Crm.js"
import * as NatsFixture from "../fixtures/Nats.js"
import { freePorts } from "../fixtures/NatsCluster.js"
import * as Runtime from "../fixtures/Runtime.js"
import { spawnWorker } from "../fixtures/Worker.js"

const registry = Message.registry([...Dispatch.all, DeadLetter.DeadLettered])
const PARTITIONS = 4
const nodeOptions = { registry, actors: [], commands: [], routeCommands: false } as const

/** A timer as asked for: wake `contactId` with `token` at `wakeAt`. */
interface Timer {
  readonly contactId: string
  readonly token: string
  readonly wakeAt: number
}

/** A wake-up as stored in the mailbox stream. */
interface Fired {
  readonly id: string
  readonly contactId: string
  readonly token: string
  /** When the server stored it (ms). */
  readonly storedAt: number
  /** When the node fired it: its envelope's time, set as the scheduler sent it (ms). */
  readonly firedAt: number
}

/** Asks the scheduler agent for a timer, as a contact actor does. */
const setTimer = (tenant: string, t: Timer) =>
  Runtime.send(
    registry,
    tenant,
    Address.agent("scheduler"),
    Dispatch.DeferRequested,
    { campaignId: Ids.CampaignId.make("cmp-timers"), contactId: Ids.ContactId.make(t.contactId), wakeAt: t.wakeAt, reason: "test", token: t.token },
    Address.actor("contact", t.contactId)
  )

const setTimers = (tenant: string, timers: ReadonlyArray<Timer>) =>
  Effect.forEach(timers, (t) => setTimer(tenant, t), { concurrency: 64, discard: true })

/** How many messages a tenant's mailboxes hold (cheap; no message is read). */
const storedCount = (tenant: string) =>
  Effect.gen(function* () {
    const { jsm } = yield* NatsClient
    const { subjects } = yield* Deployment.Deployment
    const info = yield* Effect.promise(() => jsm.streams.info(subjects.streams.mailboxes, { subjects_filter: `${subjects.prefix}.${tenant}.mbox.>` }))
    return Object.values(info.state.subjects ?? {}).reduce((a, n) => a + n, 0)
  })

/** Every wake-up stored for a tenant, read without consuming it (a temporary consumer that acks nothing). */
const firedFor = (tenant: string) =>
  Effect.gen(function* () {
    const { js, jsm } = yield* NatsClient
    const { subjects } = yield* Deployment.Deployment
    const info = yield* Effect.promise(() =>
      jsm.consumers.add(subjects.streams.mailboxes, {
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: `${subjects.prefix}.${tenant}.mbox.>`,
        ack_wait: Topology.nanos(120_000),
        max_ack_pending: -1,
        inactive_threshold: Topology.nanos(30_000)
      })
    )
    const consumer = yield* Effect.promise(() => js.consumers.get(subjects.streams.mailboxes, info.name))
    const out: Array<Fired> = []
    while (true) {
      const batch = yield* Effect.promise(async () => {
        const msgs: Array<JsMsg> = []
        for await (const m of await consumer.fetch({ max_messages: 1_000, expires: 1_000 })) msgs.push(m)
        return msgs
      })
      for (const m of batch) {
        const e = m.json<{ id: string; type: string; ts: number; payload: { contactId: string; token: string } }>()
        expect(e.type, `only wake-ups in ${tenant}'s mailboxes`).toBe(Dispatch.StepDue.type)
        out.push({ id: e.id, contactId: e.payload.contactId, token: e.payload.token, storedAt: m.info.timestampNanos / 1e6, firedAt: e.ts })
      }
      if (batch.length === 0 || batch[batch.length - 1]!.info.pending === 0) break
    }
    yield* Effect.promise(() => consumer.delete().catch(() => false))
    return out
  })

/** Waits until `n` wake-ups are stored for the tenant, then a little longer (a duplicate would show). */
const awaitFired = (tenant: string, n: number, timeoutMs: number) =>
  Effect.gen(function* () {
    yield* Crm.waitFor(`${n} wake-ups stored for ${tenant}`, Effect.map(storedCount(tenant), (c) => (c >= n ? c : undefined)), timeoutMs)
    yield* Effect.sleep("1500 millis")
    return yield* firedFor(tenant)
  })

/** The scheduler's consumer: what waits in it and how it is configured. */
const schedulerConsumer = Effect.gen(function* () {
  const { jsm } = yield* NatsClient
  const { subjects, topology } = yield* Deployment.Deployment
  return yield* Effect.promise(() => jsm.consumers.info(subjects.streams.work, topology.workConsumer("scheduler").durable_name))
})

/**
 * The highest value of `counter` any node of the deployment reported from now on (nodes
 * publish their counters on core NATS every `NEXUS_METRICS_EVERY`).
 */
const watchReported = (counter: string) =>
  Effect.gen(function* () {
    const { nc } = yield* NatsClient
    const { subjects } = yield* Deployment.Deployment
    let highest = 0
    const sub = nc.subscribe(subjects.nodeMetricsAll, {
      callback: (_e, m) => {
        const value = (m.json() as { payload?: { counters?: Record<string, number> } }).payload?.counters?.[counter] ?? 0
        highest = Math.max(highest, value)
      }
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
    return () => highest
  })

/** Each timer fired exactly once, never before its time (and how late, per timer). */
const expectOncePerTimer = (timers: ReadonlyArray<Timer>, fired: ReadonlyArray<Fired>, phase: string) => {
  const byKey = new Map<string, Array<Fired>>()
  for (const f of fired) byKey.set(`${f.contactId}/${f.token}`, [...(byKey.get(`${f.contactId}/${f.token}`) ?? []), f])
  const distinct = new Map(timers.map((t) => [`${t.contactId}/${t.token}`, t]))
  expect(fired.length, `${phase}: wake-ups stored (expected one per distinct timer)`).toBe(distinct.size)
  for (const [key, t] of distinct) {
    const got = byKey.get(key) ?? []
    expect(got.length, `${phase}: wake-ups of ${key}`).toBe(1)
    expect(got[0]!.storedAt, `${phase}: ${key} fired before its time (wakeAt ${t.wakeAt})`).toBeGreaterThanOrEqual(t.wakeAt)
  }
  return new Map([...distinct].map(([key, t]) => [key, byKey.get(key)![0]!.storedAt - t.wakeAt]))
}

layer(Runtime.layer({ partitions: PARTITIONS }), { timeout: 240_000, excludeTestServices: true })("durable timers", (it) => {
  it.scoped("a timer fires once at its time, waiting in JetStream rather than in the node", () =>
    Effect.gen(function* () {
      const { subjects, topology } = yield* Deployment.Deployment
      // a consumer left by an older version (delivery limit, bounded unacked): upgraded in place
      yield* Provision.consumer(subjects.streams.work, topology.workConsumer("scheduler", 16_384))
      expect((yield* schedulerConsumer).config.max_deliver, "the old consumer's delivery limit").toBe(Topology.defaultDelivery.maxDeliver)
      const node = yield* Node.start({ ...nodeOptions, agents: [Agents.scheduler] })
      const config = (yield* schedulerConsumer).config
      expect(config.max_deliver, "the scheduler's consumer has no delivery limit").toBe(-1)
      expect(config.max_ack_pending, "nor a limit on waiting timers").toBe(-1)

      const tenant = "t1"
      const timer: Timer = { contactId: "k1", token: "tok-1", wakeAt: Date.now() + 3_000 }
      // asked for twice (a re-run of the contact's handler): one wake-up
      yield* setTimers(tenant, [timer, timer])

      yield* Effect.sleep("1500 millis")
      const waiting = yield* schedulerConsumer
      expect(waiting.num_ack_pending, "both requests wait in the work queue (delivered, nak'd with a delay)").toBe(2)
      expect(node.counters.inFlight, "no handler holds a timer").toBe(0)
      expect(yield* storedCount(tenant), "nothing fired early").toBe(0)

      const fired = yield* awaitFired(tenant, 1, 15_000)
      const late = expectOncePerTimer([timer], fired, "single timer")
      const lateMs = late.get("k1/tok-1")!
      console.log(`timer fired ${lateMs} ms after its time; hops ${node.counters.timerHops}, duplicates suppressed ${node.counters.duplicatesSuppressed}`)
      expect(lateMs, "fired within 1 s of its time").toBeLessThan(1_000)
      expect(node.counters.duplicatesSuppressed, "the second request's wake-up was de-duplicated by its id").toBe(1)
      const done = yield* Crm.waitFor(
        "the work queue to be empty",
        Effect.map(schedulerConsumer, (i) => (i.num_pending === 0 && i.num_ack_pending === 0 ? i : undefined))
      )
      expect(done.num_pending).toBe(0)
    })
  )

  it.scoped("timers survive a SIGKILLed worker: a new worker fires each once, none early", () =>
    Effect.gen(function* () {
      const { prefix } = yield* NatsFixture.NatsFixture
      const env = { NEXUS_PREFIX: prefix, NEXUS_PARTITIONS: String(PARTITIONS), NEXUS_NODE_NAME: "timers-test", NEXUS_METRICS_EVERY: "300 millis" }
      const hops = yield* watchReported("timerHops")
      const script = "test/fixtures/TimerWorker.ts"
      const first = yield* spawnWorker(env, script)
      yield* first.waitForLog(/timer node up/, 60_000)

      const tenant = "t2"
      const t0 = Date.now()
      const timers = Array.from({ length: 50 }, (_, i): Timer => ({ contactId: `k${i}`, token: `tok-${i}`, wakeAt: t0 + 3_000 + i * 200 }))
      yield* setTimers(tenant, timers)
      // the worker has taken every timer and put it back to wait (as it reported)
      yield* Crm.waitFor("the worker to have put all 50 timers back to wait", Effect.sync(() => (hops() >= 50 ? true : undefined)), 15_000)
      const waiting = yield* schedulerConsumer
      expect(waiting.num_ack_pending, "all 50 wait in the work queue").toBe(50)
      const killed = yield* first.stop("SIGKILL")
      expect(killed, "the first worker was killed").toBe("SIGKILL")
      expect(yield* storedCount(tenant), "nothing fired before the kill").toBe(0)
      // no worker until some timers are overdue
      yield* Effect.sleep(Duration.millis(Math.max(0, t0 + 4_000 - Date.now())))

      const second = yield* spawnWorker(env, script)
      yield* second.waitForLog(/timer node up/, 60_000)
      const upAt = Date.now()
      const fired = yield* awaitFired(tenant, timers.length, 60_000)
      yield* second.stop("SIGTERM")
      const late = expectOncePerTimer(timers, fired, "after SIGKILL")
      // due while no worker ran: fired soon after the new one came up; the rest on time
      for (const t of timers) {
        const key = `${t.contactId}/${t.token}`
        const bound = Math.max(t.wakeAt, upAt) - t.wakeAt + 2_000
        expect(late.get(key)!, `${key} fired ${late.get(key)} ms after its time (worker up ${upAt - t.wakeAt} ms after it)`).toBeLessThan(bound)
      }
      const overdue = timers.filter((t) => t.wakeAt < upAt).length
      expect(overdue, "some timers came due while no worker ran").toBeGreaterThan(0)
      console.log(
        `after SIGKILL: ${fired.length} timers fired once each (${overdue} came due while no worker ran); ` +
          `worker back up ${upAt - t0} ms after they were set; latest ${Math.round(Math.max(...late.values()))} ms after its time`
      )
    })
  )

  it.scoped("2,000 overdue timers fire at no more than the node's rate, each once", () =>
    Effect.gen(function* () {
      const RATE = 400
      const tenant = "t4"
      const now = Date.now()
      const timers = Array.from({ length: 2_000 }, (_, i): Timer => ({ contactId: `k${i}`, token: `tok-${i}`, wakeAt: now - 60_000 + i * 10 }))
      // 200 of them asked for twice: collapsed to one wake-up each
      yield* setTimers(tenant, [...timers, ...timers.slice(0, 200)])
      const node = yield* Node.start({ ...nodeOptions, agents: [{ ...Agents.scheduler, timers: { firesPerSecond: RATE } }] })
      const startedAt = Date.now()
      const fired = yield* awaitFired(tenant, timers.length, 90_000)
      expectOncePerTimer(timers, fired, "flood")

      // the rate is the node's: counted by when it fired each wake-up (transport and the
      // server add their own jitter to when it was stored, tens of ms on a loaded machine)
      const times = fired.map((f) => f.firedAt).sort((a, b) => a - b)
      let maxInSecond = 0
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= 1_000) j++
        maxInSecond = Math.max(maxInSecond, i - j + 1)
      }
      const spanMs = times[times.length - 1]! - times[0]!
      console.log(
        `flood: 2,000 overdue timers (+200 duplicates) fired over ${spanMs} ms, at most ${maxInSecond} in any second (rate ${RATE}/s); ` +
          `held back ${node.counters.timersHeldBack} times, fired ${node.counters.timersFired} (duplicates suppressed ${node.counters.duplicatesSuppressed}); ` +
          `all done ${times[times.length - 1]! - startedAt} ms after the node started`
      )
      // the rate, plus the bucket's burst (a tenth of a second's worth), plus a little for
      // the time between the handler's send and the gate's decision
      expect(maxInSecond, "fires in any one-second window").toBeLessThanOrEqual(RATE * 1.1 + 8)
      expect(spanMs, "spread over at least the time the rate needs").toBeGreaterThanOrEqual(((timers.length - RATE / 10) / RATE) * 1_000 * 0.95)
      expect(spanMs, "and not much longer").toBeLessThan((timers.length / RATE) * 1_000 * 2)
      const done = yield* Crm.waitFor(
        "the work queue to be empty",
        Effect.map(schedulerConsumer, (i) => (i.num_pending === 0 && i.num_ack_pending === 0 ? i : undefined)),
        30_000
      )
      expect(done.num_ack_pending).toBe(0)
    })
  )
})

/** Reserves a free loopback port. */
const freePort = Effect.promise(() => freePorts(1).then(([port]) => port!))

/** A `nats-server -js` of this test alone: its own port and store, killed and started again at will. */
const ownServer = Effect.acquireRelease(
  Effect.gen(function* () {
    const binary = Option.getOrThrowWith(LocalServer.findBinary(), () => new Error("nats-server not found on PATH"))
    const port = yield* freePort
    const dir = mkdtempSync(join(tmpdir(), "nexus-timers-nats-"))
    let child: ChildProcess | undefined
    // a test that times out never runs its finalizers: the server still goes with this process
    const onExit = () => void child?.kill("SIGKILL")
    process.once("exit", onExit)
    const start = Effect.gen(function* () {
      child = spawn(binary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: "ignore" })
      const deadline = Date.now() + 15_000
      while (!(yield* LocalServer.answers("127.0.0.1", port, 250))) {
        if (Date.now() > deadline) return yield* Effect.dieMessage(`nats-server on ${port} did not start`)
        yield* Effect.sleep("100 millis")
      }
    })
    const kill = Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          if (child === undefined || child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
    )
    yield* start
    return { url: `nats://127.0.0.1:${port}`, start, kill, dir, onExit }
  }),
  (s) =>
    s.kill.pipe(
      Effect.andThen(Effect.sync(() => {
        process.removeListener("exit", s.onExit)
        rmSync(s.dir, { recursive: true, force: true })
      }))
    )
)

it.scopedLive("timers survive a NATS server restart (SIGKILL): each fires once, none early", () =>
  Effect.gen(function* () {
    const server = yield* ownServer
    const tenant = "t3"
    const deployment = Deployment.layerWith({ servers: [server.url], prefix: NatsFixture.randomPrefix(), partitions: PARTITIONS, replicas: 1, name: "timers-restart" })
    yield* Effect.scoped(
      Effect.gen(function* () {
        // hops of 2 s: each timer is put back several times, across the restart
        const node = yield* Node.start({ ...nodeOptions, agents: [{ ...Agents.scheduler, timers: { maxHop: "2 seconds" } }] })
        const t0 = Date.now()
        const timers = Array.from({ length: 20 }, (_, i): Timer => ({ contactId: `k${i}`, token: `tok-${i}`, wakeAt: t0 + 3_000 + i * 300 }))
        yield* setTimers(tenant, timers)
        yield* Crm.waitFor(
          "the node to have seen all 20 timers",
          Effect.map(schedulerConsumer, (i) => (i.num_pending === 0 && i.num_ack_pending === 20 ? i : undefined)),
          15_000
        )
        yield* server.kill
        const downAt = Date.now()
        yield* Effect.sleep("4 seconds")
        yield* server.start
        const upAt = Date.now()
        const fired = yield* awaitFired(tenant, timers.length, 60_000)
        const late = expectOncePerTimer(timers, fired, "after the server restart")
        // a killed 2.9 server may come back without the nak delays of its last moments: those
        // timers are redelivered an ack wait after their last delivery (later than due, or
        // earlier, then put back again)
        const ackWaitMs = Topology.defaultDelivery.ackWaitMs
        for (const t of timers) {
          const key = `${t.contactId}/${t.token}`
          const bound = Math.max(t.wakeAt, upAt) - t.wakeAt + ackWaitMs + 2_000
          expect(late.get(key)!, `${key} fired ${late.get(key)} ms after its time (server back ${upAt - t.wakeAt} ms after it)`).toBeLessThan(bound)
        }
        console.log(
          `server down ${Duration.format(Duration.millis(upAt - downAt))} (from ${downAt - t0} ms after the timers were set); ` +
            `${fired.length} timers fired once each (${timers.filter((t) => t.wakeAt < upAt).length} came due while it was down); ` +
            `latest ${Math.round(Math.max(...late.values()))} ms after its time; hops ${node.counters.timerHops}`
        )
      })
    ).pipe(Effect.provide(deployment))
  }), { timeout: 120_000 })
