/**
 * Streams, consumers and KV buckets declared as code. `Provision.ts` applies them
 * idempotently at start-up. Everything here works on nats-server 2.9.10: one filter
 * subject per consumer, bucket-wide TTLs only, partitions chosen by the publisher.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type StreamConfig
} from "@nats-io/jetstream"
import { Subjects } from "../protocols/index.js"

const SECOND_NS = 1_000_000_000
/** Nanoseconds from milliseconds (JetStream durations are nanoseconds). */
export const nanos = (ms: number): number => ms * 1_000_000

/** Per-consumer delivery settings. */
export interface DeliverySettings {
  /** How long a delivered, unacked message waits before redelivery (a dead node's work moves after this). Default 8 s; handlers in flight send in-progress acks every 2 s. */
  readonly ackWaitMs: number
  /** Deliveries before JetStream gives up (the runtime dead-letters well before). Default 20. */
  readonly maxDeliver: number
  /** Unacked messages outstanding per consumer (bounds in-flight work). */
  readonly maxAckPending: number
}

/** Default delivery settings of mailboxes and work queues. */
export const defaultDelivery: DeliverySettings = { ackWaitMs: 8_000, maxDeliver: 20, maxAckPending: 4096 }

/** KV bucket names for a prefix. */
export const buckets = (prefix: string) => ({
  /** Actor state, one key per actor, written only by the actor's current host. */
  state: `${prefix}-state`,
  /** Leased locks (contact locks); bucket-wide TTL. */
  locks: `${prefix}-locks`,
  /** Node registrations (heartbeats) and partition leases; no TTL, revision-checked. */
  placement: `${prefix}-placement`,
  /** Tenant budgets: each tenant's limit and what each of its campaigns holds of it; revision-checked. */
  budgets: `${prefix}-budgets`
})

/** The complete topology of one deployment. */
export interface Topology {
  readonly subjects: Subjects.Subjects
  readonly streams: ReadonlyArray<Partial<StreamConfig> & { name: string; subjects: string[] }>
  readonly buckets: ReadonlyArray<{ name: string; ttlMs: number; history: number }>
  readonly mailboxConsumer: (partition: number) => Partial<ConsumerConfig> & { durable_name: string }
  /**
   * The consumer of an agent's work queue. `maxAckPending` default: the delivery settings';
   * `options.maxDeliver` default: the delivery settings' (`-1`: unlimited, for durable timers,
   * whose every wait is a delivery; give them `maxAckPending` `-1` too: a waiting timer is unacked).
   */
  readonly workConsumer: (agent: string, maxAckPending?: number, options?: WorkConsumerOptions) => Partial<ConsumerConfig> & { durable_name: string }
  readonly commandConsumer: Partial<ConsumerConfig> & { durable_name: string }
}

/** Per-agent overrides of a work-queue consumer. */
export interface WorkConsumerOptions {
  /** Deliveries before JetStream gives up; `-1` unlimited. Default `DeliverySettings.maxDeliver`. */
  readonly maxDeliver?: number
}

/** Options of the topology. */
export interface TopologyOptions {
  readonly prefix: string
  readonly partitions: number
  readonly replicas: number
  readonly delivery?: DeliverySettings
  /** TTL of lock leases (bucket-wide on 2.9). Default 5 minutes. */
  readonly lockTtlMs?: number
}

/** Builds the topology for a deployment. */
export const make = (options: TopologyOptions): Topology => {
  const subjects = Subjects.make(options.prefix, options.partitions)
  const delivery = options.delivery ?? defaultDelivery
  const b = buckets(options.prefix)
  const common = {
    storage: StorageType.File,
    num_replicas: options.replicas,
    duplicate_window: nanos(120_000)
  }
  const consumerBase = (durable: string, filter: string, maxAckPending: number, maxDeliver = delivery.maxDeliver) => ({
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(delivery.ackWaitMs),
    max_deliver: maxDeliver,
    max_ack_pending: maxAckPending
  })
  return {
    subjects,
    streams: [
      {
        ...common,
        name: subjects.streams.commands,
        subjects: [subjects.commandsAll],
        retention: RetentionPolicy.Workqueue,
        max_msg_size: 1024 * 1024
      },
      {
        ...common,
        name: subjects.streams.mailboxes,
        subjects: [subjects.mailboxesAll],
        retention: RetentionPolicy.Workqueue
      },
      {
        ...common,
        name: subjects.streams.work,
        subjects: [subjects.workAll],
        retention: RetentionPolicy.Workqueue
      },
      {
        ...common,
        name: subjects.streams.events,
        subjects: [subjects.eventsAll],
        retention: RetentionPolicy.Limits,
        max_age: 7 * 24 * 3600 * SECOND_NS,
        discard: DiscardPolicy.Old
      },
      {
        ...common,
        name: subjects.streams.deadLetters,
        subjects: [subjects.deadLettersAll],
        retention: RetentionPolicy.Limits,
        max_age: 30 * 24 * 3600 * SECOND_NS,
        discard: DiscardPolicy.Old
      },
      {
        // external events (webhooks) kept for their consumers; a subject per key (call id)
        // lets the gateway see what it already stored for a key (de-duplication, order)
        ...common,
        name: subjects.streams.inbound,
        subjects: [subjects.inboundAll],
        retention: RetentionPolicy.Limits,
        max_age: 30 * 24 * 3600 * SECOND_NS,
        max_msg_size: 1024 * 1024,
        discard: DiscardPolicy.Old
      }
    ],
    buckets: [
      { name: b.state, ttlMs: 0, history: 1 },
      { name: b.locks, ttlMs: options.lockTtlMs ?? 5 * 60_000, history: 1 },
      { name: b.placement, ttlMs: 0, history: 1 },
      { name: b.budgets, ttlMs: 0, history: 1 }
    ],
    mailboxConsumer: (partition) =>
      consumerBase(`mbox-${String(partition).padStart(3, "0")}`, subjects.mailboxPartition(partition), delivery.maxAckPending),
    workConsumer: (agent, maxAckPending, workOptions) =>
      consumerBase(`work-${agent}`, subjects.workFor(agent), maxAckPending ?? delivery.maxAckPending, workOptions?.maxDeliver),
    commandConsumer: consumerBase("cmd-router", subjects.commandsAll, 1024)
  }
}
