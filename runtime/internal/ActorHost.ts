/**
 * The actor engine of one node. For each owned partition it pulls from the partition's
 * mailbox consumer (holding at most `bufferPerPartition` deliveries, each kept alive with
 * in-progress acks from the moment it is queued) and routes deliveries to cells, one per
 * actor id. A cell handles its
 * queue one message at a time, in order, then commits the batch: the state and every
 * outgoing message are written together with a revision check (a transactional outbox),
 * then the messages are published (deterministic ids), and only then acked.
 * A redelivered message whose sequence is already in the state is acked without effect:
 * the state records the sequences it applied above the consumer's ack floor, because after a
 * failover an old redelivery can arrive after newer messages. With a tracer configured, each
 * message is handled in a span continuing its envelope's trace (`MessageSpan`).
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream"
import { Cause, Effect, Either, Fiber, Runtime, Schedule, type Scope } from "effect"
import { Address, DeadLetter, Errors as ProtocolErrors, type Ids, type Message, Trace } from "../../protocols/index.js"
import * as Decoder from "../../protocols/Decoder.js"
import { encoderOf } from "../../protocols/Encoding.js"
import type { ActorContext, ActorDefinition } from "../Actor.js"
import { describe, Fenced, HandlerFailed } from "../Errors.js"
import { Outbox, type OutgoingMessage } from "../Outbox.js"
import * as Supervision from "../Supervision.js"
import * as AckFloors from "./AckFloors.js"
import * as Consumption from "./Consumption.js"
import * as ExhaustedDeliveries from "./ExhaustedDeliveries.js"
import * as Heartbeat from "./Heartbeat.js"
import * as MessageSpan from "./MessageSpan.js"
import type { StateStore } from "./StateStore.js"
import type { Transport } from "./Transport.js"

/** Tunables of the actor host. */
export interface ActorHostOptions {
  /** Messages handled per commit of one actor. Default 64. */
  readonly maxBatch: number
  /** Idle time after which a resident actor is dropped from memory. Default 60 s. */
  readonly passivateAfterMs: number
  /** Resident actors per node before the least recently used idle ones are dropped. Default 20,000. */
  readonly maxResident: number
  /**
   * Deliveries a node holds per partition at most: asked for, queued behind their actor or
   * being handled (pulls never ask for more). Default 256.
   */
  readonly bufferPerPartition: number
  /**
   * How often the ack floor of a partition that acked something since its last read is read
   * (prunes de-duplication state). An idle partition's floor is read every 30 s at most.
   * Default 1 s.
   */
  readonly floorRefreshMs: number
  /** How long stopping a partition waits for its actors' in-flight work. Default 10 s. */
  readonly stopTimeoutMs: number
  /** The fence: whether this node may still commit work of a partition. Default always. */
  readonly mayCommit: (partition: number) => boolean
}

/** Default tunables. */
export const defaults: ActorHostOptions = {
  maxBatch: 64,
  passivateAfterMs: 60_000,
  maxResident: 20_000,
  bufferPerPartition: 256,
  floorRefreshMs: 1_000,
  stopTimeoutMs: 10_000,
  mayCommit: () => true
}

interface Item {
  readonly msg: JsMsg
  readonly partition: number
  readonly decoded: Message.Decoded
  /** Frees the delivery's place among what its partition holds (idempotent; see `settle`). */
  readonly done: () => void
}

/** `f`, run once however often it is called. */
const once = (f: () => void): (() => void) => {
  let called = false
  return () => {
    if (called) return
    called = true
    f()
  }
}

interface Cell {
  readonly key: string
  readonly def: ActorDefinition
  readonly address: Address.Address
  readonly id: string
  readonly tenant: Ids.TenantId
  loaded: boolean
  state: unknown
  revision: number
  /** Partition the actor lives on (its mailbox consumer's ack floor prunes `applied`). */
  readonly partition: number
  /** Sequences applied to `state` that may still be redelivered (above the ack floor). */
  applied: Set<number>
  queue: Array<Item>
  running: boolean
  lastActive: number
}

/** A running actor host. */
export interface ActorHost {
  /** Starts consuming a partition. */
  readonly startPartition: (partition: number, consumer: Consumer) => Effect.Effect<void>
  /** Stops consuming a partition and waits until its delivered work is committed. */
  readonly stopPartition: (partition: number) => Effect.Effect<void>
  /** Stops every partition and waits for in-flight work (bounded by `timeoutMs`). */
  readonly drain: (timeoutMs: number) => Effect.Effect<void>
  readonly residentCount: () => number
}

const heartbeatEveryMs = 2_000
/** How old an ack floor must be before applied sequences are pruned below it (see `AckFloors`). */
const FLOOR_LAG_MS = 5_000
/**
 * How often the ack floor of a partition that acked nothing is read: only acks move it (this
 * node's, or a previous owner's finishing its work), and an older floor prunes less, never wrongly.
 */
const IDLE_FLOOR_REFRESH_MS = 30_000
/** A loaded outbox younger than this is republished (JetStream's de-duplication window is 120 s). */
const REPUBLISH_WITHIN_MS = 60_000

/** Creates the actor host for a set of actor definitions. */
export const make = <R>(
  definitions: ReadonlyArray<ActorDefinition<any, R>>,
  transport: Transport,
  store: StateStore,
  options: ActorHostOptions = defaults
): Effect.Effect<ActorHost, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    // messages are handled in fibers forked from this runtime: tracing off from the start
    // when no tracer is configured (`Trace.untraced`)
    const runtime = yield* Trace.untraced(Effect.runtime<R>())
    const runFork = Runtime.runFork(runtime)
    const byType = new Map(definitions.map((d) => [d.type, d]))
    const accepted = new Map(definitions.map((d) => [d.type, new Set(d.accepts.map((m) => m.type))]))
    const codecs = new Map(
      definitions.map((d) => [
        d.type,
        { encode: encoderOf(d.state), decode: Decoder.sync(d.state) }
      ])
    )
    const cells = new Map<string, Cell>()
    const heartbeat = Heartbeat.make(heartbeatEveryMs)
    yield* Effect.addFinalizer(() => Effect.sync(heartbeat.stop))
    const partitions = new Map<
      number,
      { consumption: Consumption.BoundedConsumption; floor: Fiber.RuntimeFiber<void, unknown> }
    >()
    /** Consumptions of partitions given up whose pulls are still open (see `stopPartition`). */
    const releasing = new Set<Consumption.BoundedConsumption>()
    // ack floors of the partitions' consumers, as old as pruning needs them (see `AckFloors`)
    const floors = AckFloors.make(FLOOR_LAG_MS)
    /** Partitions that acked (or handed back) something since their floor was last read. */
    const acked = new Set<number>()
    const counters = transport.counters
    let running = 0
    let idleWaiters: Array<() => void> = []

    const notifyIdle = () => {
      if (running === 0) {
        const w = idleWaiters
        idleWaiters = []
        w.forEach((f) => f())
      }
    }

    const refuse = (msg: JsMsg, partition: number, done: () => void, receiver: string, error: unknown, decoded?: Message.Decoded) =>
      transport.deadLetter(msg, receiver, error, decoded).pipe(
        Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(10)))),
        Effect.matchEffect({
          onSuccess: () => Effect.sync(() => msg.ack()),
          onFailure: () => Effect.sync(() => msg.nak(1_000))
        }),
        Effect.tap(() => Effect.sync(() => acked.add(partition))),
        Effect.ensuring(Effect.sync(done))
      )

    /**
     * A queued delivery is answered: acked, or handed back after `nakDelayMs` (0: at once).
     * Its in-progress acks stop and its partition may pull another in its place.
     */
    const settle = (item: Item, nakDelayMs?: number) => {
      heartbeat.remove(item.msg)
      if (nakDelayMs === undefined) item.msg.ack()
      else item.msg.nak(nakDelayMs)
      acked.add(item.partition)
      item.done()
    }

    const route = (msg: JsMsg, done: () => void): void => {
      counters.received++
      if (msg.info.deliveryCount > 1) counters.redeliveries++
      const subjectParts = msg.subject.split(".")
      const partition = Number(subjectParts[3])
      const decoded = transport.decode(msg)
      if (Either.isLeft(decoded)) {
        runFork(refuse(msg, partition, done, "mailbox", decoded.left))
        return
      }
      const m = decoded.right
      const to = Address.parse(m.envelope.to)
      const def = to.kind === "actor" ? byType.get(to.type) : undefined
      if (to.kind !== "actor" || def === undefined || subjectParts[4] !== to.type || subjectParts[5] !== to.id) {
        runFork(
          refuse(
            msg,
            partition,
            done,
            m.envelope.to,
            new ProtocolErrors.UnexpectedMessage({
              type: m.type,
              receiver: m.envelope.to,
              message: `no actor type hosted here for address '${m.envelope.to}' on subject ${msg.subject}`
            }),
            m
          )
        )
        return
      }
      if (m.type !== DeadLetter.DeadLettered.type && !accepted.get(def.type)!.has(m.type)) {
        runFork(
          refuse(
            msg,
            partition,
            done,
            m.envelope.to,
            new ProtocolErrors.UnexpectedMessage({
              type: m.type,
              receiver: m.envelope.to,
              message: `actor type '${def.type}' does not accept '${m.type}'`
            }),
            m
          )
        )
        return
      }
      const key = `${def.type}.${m.envelope.tenant}.${to.id}`
      let cell = cells.get(key)
      if (cell === undefined) {
        cell = {
          key,
          def,
          address: m.envelope.to,
          id: to.id,
          tenant: m.envelope.tenant,
          loaded: false,
          state: undefined,
          revision: 0,
          partition,
          applied: new Set(),
          queue: [],
          running: false,
          lastActive: Date.now()
        }
        cells.set(key, cell)
        counters.residentActors = cells.size
      }
      // in-progress acks from now on: a delivery queued behind a busy actor (a campaign
      // hearing thousands of completions, a node short of CPU) waits here, and its ack_wait
      // must not run out before its turn comes (the server would hand it out again)
      heartbeat.add(msg)
      cell.queue.push({ msg, partition, decoded: m, done: once(done) })
      if (!cell.running) {
        cell.running = true
        running++
        runFork(drainCell(cell))
      }
    }

    const load = (cell: Cell) =>
      Effect.gen(function* () {
        const stored = yield* store.load(cell.key)
        const codec = codecs.get(cell.def.type)!
        const o = stored?.value.o
        if (o !== undefined && o.length > 0) {
          // the last commit's outbox: published unless its batch may not have been acked
          // (a host died between commit and ack); republishing is harmless within the
          // de-duplication window, and needed if the batch was never published
          const floor = floors.safe(cell.partition)
          const unacked = (stored!.value.ob ?? []).some((q) => q > floor)
          if (unacked || Date.now() - (stored!.value.ot ?? 0) < REPUBLISH_WITHIN_MS) {
            yield* Supervision.retrying(transport.publishWire(o), commitRetry)
            counters.outboxRepublished += o.length
          }
        }
        if (stored === null || stored.value.s === undefined) {
          cell.state = cell.def.initial(cell.id, cell.tenant)
          cell.revision = stored?.revision ?? 0
          cell.applied = new Set(stored?.value.d ?? [])
        } else {
          cell.state = codec.decode(stored.value.s)
          cell.revision = stored.revision
          cell.applied = new Set(stored.value.d ?? [])
        }
        cell.loaded = true
      })

    const contextFor = (cell: Cell, outbox: Outbox, envelope: Message.Decoded["envelope"]): ActorContext => ({
      self: cell.address,
      id: cell.id,
      tenant: cell.tenant,
      envelope,
      send: (to, def, payload) => outbox.send(to, def, payload)
    })

    const handleOne = (cell: Cell, state: unknown, item: Item) => {
      const policy = cell.def.supervision ?? Supervision.defaultPolicy
      const outbox = new Outbox(item.decoded.envelope, cell.address)
      const ctx = contextFor(cell, outbox, item.decoded.envelope)
      let attempts = 0
      const attempt = Effect.suspend(() => {
        attempts++
        if (attempts > 1) counters.retries++
        outbox.messages.length = 0
        if (item.decoded.type === DeadLetter.DeadLettered.type) {
          // a message this actor sent was dead-lettered downstream: escalation to the sender
          return cell.def.onDeadLetter
            ? cell.def.onDeadLetter(state, item.decoded, item.decoded.payload, ctx)
            : Effect.succeed(state)
        }
        return cell.def.handle(state, item.decoded, ctx)
      })
      return attempt.pipe(
        // a thrown exception in a handler is a failure like any other: supervise it
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        (supervisedAttempt) => Supervision.supervised(supervisedAttempt, policy),
        Effect.map((next) => ({ state: next, out: outbox.messages as ReadonlyArray<OutgoingMessage> })),
        Effect.catchAll((error) =>
          Effect.gen(function* () {
            const failure = new HandlerFailed({
              receiver: cell.address,
              messageType: item.decoded.type,
              attempts,
              message: describe(error)
            })
            yield* Trace.annotate({ "nexus.dead_lettered": true })
            yield* transport.deadLetter(item.msg, cell.address, failure, item.decoded).pipe(Effect.orDie)
            if (!cell.def.onDeadLetter || item.decoded.type === DeadLetter.DeadLettered.type) {
              return { state, out: [] as ReadonlyArray<OutgoingMessage> }
            }
            outbox.messages.length = 0
            const next = yield* cell.def.onDeadLetter(state, item.decoded, failure, ctx).pipe(
              Effect.catchAll(() => Effect.succeed(state))
            )
            return { state: next, out: outbox.messages as ReadonlyArray<OutgoingMessage> }
          })
        ),
        // one span per message, continuing its envelope's trace (what it sends are its children)
        (handled) => MessageSpan.around(handled, "actor.handle", item.msg, item.decoded, cell.address)
      )
    }

    let closed = false
    const commitRetry = Schedule.exponential("50 millis", 2).pipe(
      Schedule.either(Schedule.spaced("2 seconds")),
      Schedule.intersect(Schedule.recurs(30)),
      Schedule.whileOutput(() => !closed)
    )
    // a state write refused for a stale revision is not retried: another host wrote the state
    const saveRetry = commitRetry.pipe(Schedule.whileInput((e: { readonly _tag: string }) => e._tag !== "StateConflict"))

    const processBatch = (cell: Cell, batch: ReadonlyArray<Item>) =>
      Effect.gen(function* () {
        if (!cell.loaded) yield* Supervision.retrying(load(cell), commitRetry)
        let state = cell.state
        const applied: Array<number> = []
        const out: Array<OutgoingMessage> = []
        for (const delivered of batch) {
          // a notice that a message to this actor ran out of deliveries brings the message
          // itself: handled now, unless it was applied (then only its acks were lost)
          const lost = ExhaustedDeliveries.lostOriginal(delivered.decoded, cell.address, transport.subjects.streams.mailboxes, transport.registry, (q) =>
            cell.applied.has(q) || applied.includes(q)
          )
          if (cell.applied.has(delivered.msg.seq) || applied.includes(delivered.msg.seq) || lost === "applied") {
            counters.staleSkipped++
            continue
          }
          const item = lost === null ? delivered : { ...delivered, decoded: lost.message }
          counters.inFlight++
          const result = yield* handleOne(cell, state, item).pipe(Effect.ensuring(Effect.sync(() => counters.inFlight--)))
          state = result.state
          for (const o of result.out) out.push(o)
          applied.push(item.msg.seq)
          if (lost !== null) applied.push(lost.seq)
          counters.handled++
        }
        if (applied.length > 0) {
          if (!options.mayCommit(cell.partition)) {
            return yield* new Fenced({ partition: cell.partition, message: `partition ${cell.partition} is not held by this node` })
          }
          // transactional outbox: the state and what it sends are committed together
          // (revision-checked, so a host that lost the actor commits nothing), then
          // published, then acked. What is published always matches a committed state.
          const wire = transport.wire(out)
          const codec = codecs.get(cell.def.type)!
          const floor = floors.safe(cell.partition)
          const keep = [...cell.applied, ...applied].filter((q) => q > floor)
          const stored = wire.length > 0 ? { s: codec.encode(state), d: keep, o: wire, ob: applied, ot: Date.now() } : { s: codec.encode(state), d: keep }
          cell.revision = yield* Supervision.retrying(store.save(cell.key, stored, cell.revision), saveRetry)
          cell.state = state
          cell.applied = new Set(keep)
          yield* Supervision.retrying(transport.publishWire(wire), commitRetry)
        }
        for (const item of batch) settle(item)
      })

    const drainCell = (cell: Cell): Effect.Effect<void, never, R> =>
      Effect.gen(function* () {
        while (cell.queue.length > 0) {
          const batch = cell.queue.splice(0, options.maxBatch)
          yield* processBatch(cell, batch).pipe(
            Effect.catchAllCause((cause) =>
              Effect.gen(function* () {
                const error = Cause.squash(cause)
                // state conflict or storage down past retries: forget resident state, redeliver soon
                if ((error as { _tag?: string })._tag === "StateConflict") counters.stateConflicts++
                yield* Effect.logWarning(`actor ${cell.key}: batch not committed, will be redelivered: ${describe(error)}`)
                cell.loaded = false
                for (const item of batch) settle(item, closed ? 0 : 500)
              })
            ),
            // an interrupted batch (the node stopping) answers nothing: its deliveries come back after their ack wait
            Effect.ensuring(
              Effect.sync(() =>
                batch.forEach((item) => {
                  heartbeat.remove(item.msg)
                  item.done()
                })
              )
            )
          )
          cell.lastActive = Date.now()
        }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            cell.running = false
            running--
            if (cell.queue.length > 0) {
              cell.running = true
              running++
              runFork(drainCell(cell))
            } else if (cell.loaded && cell.def.isIdle?.(cell.state)) {
              cells.delete(cell.key)
              counters.passivations++
              counters.residentActors = cells.size
            }
            notifyIdle()
          })
        )
      )

    const sweep = Effect.sync(() => {
      const now = Date.now()
      const idle: Array<Cell> = []
      for (const cell of cells.values()) {
        if (!cell.running && cell.queue.length === 0) {
          if (now - cell.lastActive > options.passivateAfterMs) {
            cells.delete(cell.key)
            counters.passivations++
          } else idle.push(cell)
        }
      }
      if (cells.size > options.maxResident) {
        idle.sort((a, b) => a.lastActive - b.lastActive)
        for (const cell of idle.slice(0, cells.size - options.maxResident)) {
          cells.delete(cell.key)
          counters.passivations++
        }
      }
      counters.residentActors = cells.size
    })
    yield* Effect.forkScoped(sweep.pipe(Effect.delay("5 seconds"), Effect.forever))

    /** A delivery never started goes back to the server at once (another node may take it). */
    const handBack = (item: Item) => settle(item, 0)

    const waitIdle = Effect.async<void>((resume) => {
      if (running === 0) return resume(Effect.void)
      idleWaiters.push(() => resume(Effect.void))
    })

    const startPartition = (partition: number, consumer: Consumer) =>
      Effect.gen(function* () {
        if (partitions.has(partition)) return
        // bounded pulls: a node holds no delivery it has not started in a client buffer, where
        // stopping the partition (a rebalance) would lose it until its ack wait ran out
        const consumption = Consumption.startBounded(
          consumer,
          options.bufferPerPartition,
          route,
          (e) => runFork(Effect.logWarning(`partition ${partition}: consumption interrupted, reopening: ${describe(e)}`)),
          { ping: transport.ping, onLapse: () => void transport.counters.pullsLapsed++ }
        )
        // the floor moves only when something is acked: read it after acks, and rarely when idle
        let readAt = 0
        const read = Effect.suspend(() => {
          if (!acked.has(partition) && Date.now() - readAt < IDLE_FLOOR_REFRESH_MS) return Effect.void
          acked.delete(partition)
          readAt = Date.now()
          return Effect.tryPromise(() => consumer.info(false)).pipe(
            Effect.tap((info) => Effect.sync(() => floors.record(partition, info.ack_floor.stream_seq))),
            Effect.tapError(() => Effect.sync(() => acked.add(partition))),
            Effect.ignore
          )
        })
        const floor = runFork(read.pipe(Effect.delay(options.floorRefreshMs), Effect.forever))
        partitions.set(partition, { consumption, floor })
      })

    const stopPartition = (partition: number) =>
      Effect.gen(function* () {
        const p = partitions.get(partition)
        if (!p) return
        partitions.delete(partition)
        yield* Fiber.interrupt(p.floor)
        floors.forget(partition)
        acked.delete(partition)
        // released, not closed: what the server already sent goes back to the next owner
        yield* Effect.promise(() => p.consumption.release())
        releasing.add(p.consumption)
        void p.consumption.ended().then(() => releasing.delete(p.consumption))
        // let this partition's actors commit what they started, then forget them
        const mine = () => [...cells.values()].filter((c) => c.partition === partition)
        const deadline = Date.now() + options.stopTimeoutMs
        while (mine().some((c) => c.running) && Date.now() < deadline) yield* Effect.sleep("10 millis")
        for (const cell of mine()) {
          for (const item of cell.queue.splice(0)) handBack(item)
          cells.delete(cell.key)
        }
        counters.residentActors = cells.size
      })

    const drain = (timeoutMs: number) =>
      Effect.gen(function* () {
        yield* Effect.forEach([...partitions.keys()], stopPartition, { concurrency: "unbounded", discard: true })
        yield* Effect.interruptible(waitIdle).pipe(Effect.timeout(timeoutMs), Effect.ignore) // drains run in finalizers: uninterruptible unless said
        closed = true
        // anything still queued was never started: hand it back at once
        for (const cell of cells.values()) for (const item of cell.queue.splice(0)) handBack(item)
        // the connection closes after this: let the released pulls end first (what they bring goes back)
        yield* Effect.promise(() => Consumption.allEnded(releasing))
      })

    return { startPartition, stopPartition, drain, residentCount: () => cells.size }
  })
