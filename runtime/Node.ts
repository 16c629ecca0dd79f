/**
 * A runtime node: hosts actors, agents and the command router of one process.
 * Starting it provisions the consumers it needs and starts consuming; closing its scope
 * (SIGTERM through `NodeRuntime.runMain`) drains: it stops pulling, lets in-flight work
 * commit, and hands back what was never started. While it runs it reports its counters on
 * `<p>._sys.metrics.<node>` for the gateways' `/metrics`, whatever process started it.
 */
import { randomBytes } from "node:crypto"
import { Config, ConfigError, Context, Duration, Effect, Either, Runtime, Schedule } from "effect"
import { Message, NodeMetrics } from "../protocols/index.js"
import * as AckedPublisher from "../nats/AckedPublisher.js"
import * as FastKv from "../nats/FastKv.js"
import { Deployment } from "../nats/Deployment.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import * as Provision from "../nats/Provision.js"
import { buckets, type Topology } from "../nats/Topology.js"
import type { ActorDefinition } from "./Actor.js"
import type { AgentDefinition } from "./Agent.js"
import { KvFailed } from "./Errors.js"
import * as ActorHost from "./internal/ActorHost.js"
import * as AgentHost from "./internal/AgentHost.js"
import * as CommandRouter from "./internal/CommandRouter.js"
import * as ExhaustedDeliveries from "./internal/ExhaustedDeliveries.js"
import * as Placement from "./internal/Placement.js"
import * as StateStore from "./internal/StateStore.js"
import * as Transport from "./internal/Transport.js"
import * as Metrics from "./Metrics.js"

export type { CommandRoute } from "./internal/CommandRouter.js"

/** What a node runs. */
export interface NodeOptions<R> {
  /** Every message type on the wire (for decoding). */
  readonly registry: Message.Registry
  readonly actors: ReadonlyArray<ActorDefinition<any, R>>
  readonly agents: ReadonlyArray<AgentDefinition<R>>
  readonly commands: ReadonlyArray<CommandRouter.CommandRoute>
  /**
   * Fixed partitions to host, bypassing placement (tests of a single node). Default: placement
   * decides, with leases in KV, so each partition is on exactly one live node.
   */
  readonly partitions?: ReadonlyArray<number>
  /** Placement tunables (heartbeat, failover time). */
  readonly placement?: Partial<Placement.PlacementOptions>
  /** This node's id in placement. Default `NatsConfig.name` plus a random suffix. */
  readonly nodeId?: string
  /** Whether to route commands. Default true. */
  readonly routeCommands?: boolean
  /** Time allowed for in-flight work on shutdown. Default 20 s. */
  readonly drainTimeout?: Duration.DurationInput
  /**
   * Time agent handlers in flight get to finish on shutdown; those still running after it
   * are interrupted and their messages nak'd, so another node takes them at once (instead of
   * after the ack wait). Default 10 s, at most `drainTimeout`.
   */
  readonly agentGrace?: Duration.DurationInput
  readonly actorHost?: Partial<ActorHost.ActorHostOptions>
  /**
   * How often the node reports its counters on `<p>._sys.metrics.<node>` (core NATS, for the
   * gateways' `/metrics`). Default `NEXUS_METRICS_EVERY`, else 5 s.
   */
  readonly metricsEvery?: Duration.DurationInput
  /**
   * Durable timers fired per second by each timer agent on this node (overdue ones beyond
   * it are spread out), unless the agent's definition says. Default
   * `NEXUS_TIMER_FIRES_PER_SECOND`, else 500.
   */
  readonly timerFiresPerSecond?: number
  /**
   * Messages each agent handles at once on this node, by agent name, over its definition's
   * `concurrency` (agents waiting on remote models or channels keep more in flight than
   * their CPU would need). Default `NEXUS_AGENT_CONCURRENCY`, else the definitions'.
   */
  readonly agentConcurrency?: Readonly<Record<string, number>>
  /**
   * How often the node looks for messages its consumers gave up on (ran out of deliveries)
   * whose advisory no node took (`ExhaustedDeliveries.sweep`). Default 1 minute.
   */
  readonly exhaustedSweepEvery?: Duration.DurationInput
}

/** A running node. */
export interface NodeHandle {
  readonly nodeId: string
  readonly counters: Metrics.Counters
  /** Partitions this node hosts now. */
  readonly partitions: () => ReadonlyArray<number>
  /** Live nodes as this node sees them. */
  readonly liveNodes: () => ReadonlyArray<string>
  readonly residentActors: () => number
}

/** The running node of this process. */
export class RuntimeNode extends Context.Tag("nexus/RuntimeNode")<RuntimeNode, NodeHandle>() {}

const metricsRegistry = Message.registry(NodeMetrics.all)
const GAUGES: ReadonlyArray<string> = ["inFlight", "residentActors"]
const metricsEveryConfig = Config.duration("NEXUS_METRICS_EVERY").pipe(Config.withDefault(Duration.seconds(5)))
/**
 * Parses `NEXUS_AGENT_CONCURRENCY`: comma-separated `<agent>=<n>` entries, and at most one
 * bare `<n>` for every agent not named (`content=256,analyzer=256`, `128,planner=8`). The
 * result maps agent names to limits; `*` holds the bare number.
 */
export const parseAgentConcurrency = (text: string): Either.Either<Record<string, number>, string> => {
  const out: Record<string, number> = {}
  for (const raw of text.split(",")) {
    const entry = raw.trim()
    if (entry === "") continue
    const at = entry.indexOf("=")
    const [name, value] = at < 0 ? ["*", entry] : [entry.slice(0, at).trim(), entry.slice(at + 1).trim()]
    const n = Number(value)
    if (!/^[A-Za-z0-9_-]+$|^\*$/.test(name!) || !Number.isInteger(n) || n < 1) {
      return Either.left(`'${entry}' is not <agent>=<positive integer> or a positive integer`)
    }
    if (out[name!] !== undefined) return Either.left(`'${name}' is given twice`)
    out[name!] = n
  }
  return Either.right(out)
}

const agentConcurrencyConfig = Config.string("NEXUS_AGENT_CONCURRENCY").pipe(
  Config.mapOrFail((text) =>
    Either.mapLeft(parseAgentConcurrency(text), (why) => ConfigError.InvalidData([], `NEXUS_AGENT_CONCURRENCY: ${why}`))
  ),
  Config.withDefault({} as Record<string, number>)
)

const timerRateConfig = Config.number("NEXUS_TIMER_FIRES_PER_SECOND").pipe(
  Config.validate({ message: "must be a positive number", validation: (n) => n > 0 }),
  Config.withDefault(AgentHost.defaults.timerFiresPerSecond)
)

/**
 * The work-queue consumer of an agent. A timer agent's has no delivery limit (each wait is
 * a delivery) and no limit on unacked messages (each waiting timer is one, and a limit
 * would keep timers stored after them from being delivered until one of them is).
 */
const workConsumerOf = (topology: Topology, a: AgentDefinition<any>) =>
  a.timers !== undefined
    ? topology.workConsumer(a.name, -1, { maxDeliver: -1 })
    : topology.workConsumer(a.name, Math.max(256, (a.concurrency ?? 64) * 16))

/** Publishes a node's counters every `every` on core NATS (named by its node id), until the scope closes. */
export const reportMetrics = (node: NodeHandle, every: Duration.DurationInput) =>
  Effect.gen(function* () {
    const { nc } = yield* NatsClient
    const { subjects } = yield* Deployment
    const name = node.nodeId.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || `node-${process.pid}`
    const startedAt = Date.now()
    const period = Duration.decode(every)
    const everySec = Duration.toSeconds(period)
    const publish = Effect.sync(() => {
      const id = `metrics-${name}-${Date.now()}`
      const bytes = metricsRegistry.encode(
        {
          id: id as never,
          tenant: NodeMetrics.SYSTEM_TENANT as never,
          from: `ext:${name}` as never,
          to: "ext:metrics" as never,
          correlationId: id,
          causationId: null,
          ts: Date.now(),
          // not sampled: a report is not part of any trace worth keeping
          trace: { traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-00` }
        },
        NodeMetrics.NodeMetricsReported,
        {
          node: name,
          counters: { ...node.counters },
          gauges: GAUGES,
          partitions: node.partitions().length,
          startedAt,
          at: Date.now(),
          everySec
        }
      )
      if (!nc.isClosed()) nc.publish(subjects.nodeMetrics(name), bytes)
    })
    yield* publish.pipe(Effect.zipRight(Effect.sleep(period)), Effect.forever, Effect.forkScoped)
  })

/** Starts a node in the current scope; the scope's close drains it. */
export const start = <R>(options: NodeOptions<R>) =>
  Effect.gen(function* () {
    const { nc, js, jsm, kvm } = yield* NatsClient
    const { topology, subjects } = yield* Deployment
    const counters = Metrics.make()
    const publisher = yield* Effect.acquireRelease(
      Effect.sync(() => AckedPublisher.make(nc)),
      (p) => Effect.sync(p.close)
    )
    const transport = Transport.make(js, publisher, subjects, options.registry, counters, () => nc.flush())
    const stateBucket = buckets(subjects.prefix).state
    const kv = yield* Effect.tryPromise({
      try: () => kvm.open(stateBucket),
      catch: (cause) => new KvFailed({ operation: "open", key: stateBucket, message: String(cause), cause })
    }).pipe(Effect.retry(Schedule.exponential("200 millis").pipe(Schedule.upTo("60 seconds"))))
    const store = StateStore.make(kv, FastKv.make(stateBucket, publisher))
    const allPartitions = Array.from({ length: subjects.partitions }, (_, i) => i)
    const fixed = options.partitions
    const cfg = yield* NatsConfig
    const nodeId = options.nodeId ?? `${cfg.name}-${randomBytes(3).toString("hex")}`
    const drainMs = Duration.toMillis(options.drainTimeout ?? "20 seconds")
    const agentGraceMs = Math.min(drainMs, Duration.toMillis(options.agentGrace ?? "10 seconds"))

    // JetStream may be electing leaders (a server restarting): wait for it rather than fail
    const patient = Schedule.exponential("200 millis").pipe(Schedule.either(Schedule.spaced("3 seconds")), Schedule.upTo("60 seconds"))
    const consumerOf = (stream: string, durable: string) =>
      Effect.tryPromise(() => js.consumers.get(stream, durable)).pipe(Effect.retry(patient), Effect.orDie)

    // consumers first (an interest in what is already queued), then hosts
    yield* Effect.forEach(
      options.actors.length > 0 ? allPartitions : [],
      (p) => Provision.consumer(subjects.streams.mailboxes, topology.mailboxConsumer(p)),
      { concurrency: 8, discard: true }
    )
    yield* Effect.forEach(
      options.agents,
      (a) => Provision.consumer(subjects.streams.work, workConsumerOf(topology, a)),
      { concurrency: 8, discard: true }
    )
    const routeCommands = (options.routeCommands ?? true) && options.commands.length > 0
    if (routeCommands) yield* Provision.consumer(subjects.streams.commands, topology.commandConsumer)

    let placement: Placement.Placement | undefined
    const actorHost = yield* ActorHost.make(options.actors, transport, store, {
      ...ActorHost.defaults,
      ...options.actorHost,
      mayCommit: (p) => (placement ? placement.mayCommit(p) : true)
    })
    const timerFiresPerSecond = options.timerFiresPerSecond ?? (yield* Effect.orDie(timerRateConfig))
    const agentHost = yield* AgentHost.make<R>(transport, { timerFiresPerSecond })

    const runtime = yield* Effect.runtime<never>()
    const run = <A>(e: Effect.Effect<A>) => Runtime.runPromise(runtime)(e)
    const startPartition = (p: number) =>
      consumerOf(subjects.streams.mailboxes, topology.mailboxConsumer(p).durable_name).pipe(
        Effect.flatMap((c) => actorHost.startPartition(p, c))
      )
    if (options.actors.length > 0) {
      if (fixed !== undefined) {
        yield* Effect.forEach(fixed, startPartition, { concurrency: 8, discard: true })
      } else {
        const bucket = buckets(subjects.prefix).placement
        const placementKv = yield* Effect.tryPromise({
          try: () => kvm.open(bucket),
          catch: (cause) => new KvFailed({ operation: "open", key: bucket, message: String(cause), cause })
        }).pipe(Effect.retry(patient))
        placement = yield* Placement.start(
          placementKv,
          nodeId,
          subjects.partitions,
          { start: (p) => run(startPartition(p)), stop: (p) => run(actorHost.stopPartition(p)) },
          { ...Placement.defaults, ...options.placement },
          (line) => void Runtime.runFork(runtime)(Effect.logDebug(line))
        )
      }
    }
    const concurrency = options.agentConcurrency ?? (yield* Effect.orDie(agentConcurrencyConfig))
    const unknown = Object.keys(concurrency).filter((name) => name !== "*" && !options.agents.some((a) => a.name === name))
    if (unknown.length > 0) yield* Effect.logWarning(`agent concurrency set for agents this node does not run: ${unknown.join(", ")}`)
    yield* Effect.forEach(
      options.agents,
      (a) =>
        consumerOf(subjects.streams.work, topology.workConsumer(a.name).durable_name).pipe(
          Effect.flatMap((c) => agentHost.start({ ...a, concurrency: concurrency[a.name] ?? concurrency["*"] ?? a.concurrency }, c))
        ),
      { discard: true }
    )
    const router = routeCommands
      ? yield* consumerOf(subjects.streams.commands, topology.commandConsumer.durable_name).pipe(
          Effect.flatMap((c) => CommandRouter.start(transport, options.commands, c))
        )
      : undefined

    // messages that ran out of deliveries on the streams this node consumes become dead letters
    const consumed = [
      ...(options.actors.length > 0 ? [subjects.streams.mailboxes] : []),
      ...(options.agents.length > 0 ? [subjects.streams.work] : []),
      ...(routeCommands ? [subjects.streams.commands] : [])
    ]
    yield* ExhaustedDeliveries.watch(nc, jsm, transport, consumed, `${subjects.prefix}.exhausted-deliveries`)
    yield* ExhaustedDeliveries.sweepEvery(jsm, transport, consumed, options.exhaustedSweepEvery ?? "1 minute")

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* Effect.logInfo("node draining: stop pulling, finish in-flight work, hand partitions over")
        if (placement) yield* Effect.promise(() => placement!.leave())
        yield* Effect.all(
          [router ? router.drain(drainMs) : Effect.void, agentHost.drain(drainMs, agentGraceMs), actorHost.drain(drainMs)],
          { concurrency: "unbounded", discard: true }
        )
        yield* Effect.logInfo(`node drained: handled ${counters.handled} messages`)
      })
    )

    const handle: NodeHandle = {
      nodeId,
      counters,
      partitions: () => (placement ? placement.owned() : fixed ?? []),
      liveNodes: () => (placement ? placement.liveNodes() : [nodeId]),
      residentActors: actorHost.residentCount
    }
    yield* reportMetrics(handle, options.metricsEvery ?? (yield* Effect.orDie(metricsEveryConfig)))
    return handle
  })
