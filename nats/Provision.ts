/**
 * Idempotent provisioning: creates what is missing, updates what changed, leaves the rest.
 * Safe to run from every node at every start, concurrently.
 */
import type { ConsumerConfig } from "@nats-io/jetstream"
import { Effect, Schedule } from "effect"
import { apiCode, ProvisionError } from "./Errors.js"
import { NatsClient } from "./NatsClient.js"
import type { Topology } from "./Topology.js"

const STREAM_NOT_FOUND = 10059
const CONSUMER_NOT_FOUND = 10014

const wrap = (resource: string) => (cause: unknown) =>
  new ProvisionError({ resource, message: cause instanceof Error ? cause.message : String(cause), cause })

/** JetStream answers these while a cluster elects leaders or a server restarts: wait and retry. */
const transient = (e: ProvisionError) => /timeout|no responders|unavailable|not current|leader|503|closed|disconnect/i.test(e.message)

/** Retries provisioning through a cluster's leader elections and restarts (about a minute). */
const patiently = <A, R>(effect: Effect.Effect<A, ProvisionError, R>) =>
  effect.pipe(
    Effect.retry({
      schedule: Schedule.exponential("200 millis").pipe(Schedule.either(Schedule.spaced("3 seconds")), Schedule.upTo("60 seconds")),
      while: transient
    })
  )

/** Ensures every stream and KV bucket of the topology exists. */
export const streamsAndBuckets = (topology: Topology) =>
  Effect.gen(function* () {
    const { jsm, kvm } = yield* NatsClient
    yield* Effect.forEach(
      topology.streams,
      (cfg) =>
        patiently(Effect.tryPromise({
          try: async () => {
            try {
              await jsm.streams.info(cfg.name)
            } catch (e) {
              if (apiCode(e) !== STREAM_NOT_FOUND) throw e
              try {
                await jsm.streams.add(cfg)
                return
              } catch (e2) {
                // another node created it between our info and add
                if (!String(e2).includes("already in use")) throw e2
              }
            }
            const { name, retention: _r, storage: _s, ...mutable } = cfg
            await jsm.streams.update(name, mutable)
          },
          catch: wrap(`stream ${cfg.name}`)
        })),
      { concurrency: "unbounded", discard: true }
    )
    yield* Effect.forEach(
      topology.buckets,
      (b) =>
        patiently(Effect.tryPromise({
          try: () =>
            kvm.create(b.name, {
              history: b.history,
              ...(b.ttlMs > 0 ? { ttl: b.ttlMs } : {}),
              replicas: topology.streams[0]?.num_replicas ?? 1
            }),
          catch: wrap(`bucket ${b.name}`)
        })),
      { concurrency: "unbounded", discard: true }
    )
  })

/** Ensures a durable consumer exists with the given configuration. */
export const consumer = (stream: string, cfg: Partial<ConsumerConfig> & { durable_name: string }) =>
  Effect.gen(function* () {
    const { jsm } = yield* NatsClient
    yield* patiently(Effect.tryPromise({
      try: async () => {
        try {
          const info = await jsm.consumers.info(stream, cfg.durable_name)
          const c = info.config
          if (
            c.filter_subject !== cfg.filter_subject ||
            c.ack_wait !== cfg.ack_wait ||
            c.max_deliver !== cfg.max_deliver ||
            c.max_ack_pending !== cfg.max_ack_pending
          ) {
            await jsm.consumers.update(stream, cfg.durable_name, {
              ack_wait: cfg.ack_wait,
              max_deliver: cfg.max_deliver,
              max_ack_pending: cfg.max_ack_pending
            } as never)
          }
        } catch (e) {
          if (apiCode(e) !== CONSUMER_NOT_FOUND) throw e
          await jsm.consumers.add(stream, cfg)
        }
      },
      catch: wrap(`consumer ${stream}/${cfg.durable_name}`)
    }))
  })

/** Deletes every stream and bucket of a topology (tests and `nexus reset`). */
export const destroy = (topology: Topology) =>
  Effect.gen(function* () {
    const { jsm } = yield* NatsClient
    const names = [...topology.streams.map((s) => s.name), ...topology.buckets.map((b) => `KV_${b.name}`)]
    yield* Effect.forEach(
      names,
      (name) => Effect.promise(() => jsm.streams.delete(name).catch(() => false)),
      { concurrency: "unbounded", discard: true }
    )
  })
