/**
 * The one module that builds subject and stream names. Every subject starts with the
 * deployment prefix and the tenant: `<prefix>.<tenant>.<area>...`.
 *
 * - commands:   `<p>.<tenant>.cmd.<name>`                         (external input)
 * - mailboxes:  `<p>.<tenant>.mbox.<partition>.<actorType>.<actorId>`
 * - agent work: `<p>.<tenant>.work.<agent>`
 * - events:     `<p>.<tenant>.evt.<topicType>.<topicId>.<eventType>`
 * - dead letter:`<p>.<tenant>.dlq.<reason>`
 * - inbound:    `<p>.<tenant>.in.<source>.<key>.<event>`        (external events, e.g. Vapi webhooks)
 * - metrics:    `<p>._sys.metrics.<node>`                       (core NATS, not stored)
 *
 * nats-server 2.9 has no subject-transform partitioning, so the publisher puts the
 * partition (a stable hash of actor type and id) into the mailbox subject.
 */
import type * as Address from "./Address.js"

/** Subject builders bound to one deployment prefix. */
export interface Subjects {
  readonly prefix: string
  readonly streams: {
    readonly commands: string
    readonly mailboxes: string
    readonly work: string
    readonly events: string
    readonly deadLetters: string
    readonly inbound: string
  }
  readonly command: (tenant: string, name: string) => string
  readonly commandsAll: string
  readonly mailbox: (tenant: string, partition: number, actorType: string, actorId: string) => string
  readonly mailboxPartition: (partition: number) => string
  readonly mailboxesAll: string
  readonly work: (tenant: string, agent: string) => string
  readonly workFor: (agent: string) => string
  readonly workAll: string
  readonly event: (tenant: string, topicType: string, topicId: string, eventType: string) => string
  readonly eventsOf: (tenant: string, topicType: string, topicId: string) => string
  readonly eventsAll: string
  readonly deadLetter: (tenant: string, reason: string) => string
  readonly deadLettersAll: string
  /** An inbound event from an external system, keyed (e.g. by call id) for de-duplication. */
  readonly inbound: (tenant: string, source: string, key: string, event: string) => string
  readonly inboundAll: string
  /** Where a runtime node reports its counters (core NATS). */
  readonly nodeMetrics: (node: string) => string
  readonly nodeMetricsAll: string
  readonly partitionOf: (actorType: string, actorId: string) => number
  readonly partitions: number
  /** The subject an envelope addressed to `to` is published on. */
  readonly route: (tenant: string, to: Address.ParsedAddress, eventType: string) => string
}

/** Subject-safe form of a message type (`campaign.start` → `campaign-start`). */
export const typeToken = (type: string): string => type.replace(/\./g, "-")

/** FNV-1a 32-bit: stable across processes and machines. */
export const hash32 = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const pad = (n: number) => String(n).padStart(3, "0")

/** Builds the subject set for a prefix (default `nexus`) and partition count. */
export const make = (prefix: string, partitions: number): Subjects => {
  const up = prefix.toUpperCase().replace(/[^A-Z0-9_]/g, "_")
  const partitionOf = (actorType: string, actorId: string) => hash32(`${actorType}/${actorId}`) % partitions
  const self: Subjects = {
    prefix,
    partitions,
    streams: {
      commands: `${up}_CMD`,
      mailboxes: `${up}_MBOX`,
      work: `${up}_WORK`,
      events: `${up}_EVT`,
      deadLetters: `${up}_DLQ`,
      inbound: `${up}_IN`
    },
    command: (tenant, name) => `${prefix}.${tenant}.cmd.${name}`,
    commandsAll: `${prefix}.*.cmd.>`,
    mailbox: (tenant, partition, actorType, actorId) =>
      `${prefix}.${tenant}.mbox.${pad(partition)}.${actorType}.${actorId}`,
    mailboxPartition: (partition) => `${prefix}.*.mbox.${pad(partition)}.>`,
    mailboxesAll: `${prefix}.*.mbox.>`,
    work: (tenant, agent) => `${prefix}.${tenant}.work.${agent}`,
    workFor: (agent) => `${prefix}.*.work.${agent}`,
    workAll: `${prefix}.*.work.>`,
    event: (tenant, topicType, topicId, eventType) =>
      `${prefix}.${tenant}.evt.${topicType}.${topicId}.${typeToken(eventType)}`,
    eventsOf: (tenant, topicType, topicId) => `${prefix}.${tenant}.evt.${topicType}.${topicId}.>`,
    eventsAll: `${prefix}.*.evt.>`,
    deadLetter: (tenant, reason) => `${prefix}.${tenant}.dlq.${reason}`,
    deadLettersAll: `${prefix}.*.dlq.>`,
    inbound: (tenant, source, key, event) => `${prefix}.${tenant}.in.${source}.${key}.${typeToken(event)}`,
    inboundAll: `${prefix}.*.in.>`,
    nodeMetrics: (node) => `${prefix}._sys.metrics.${node}`,
    nodeMetricsAll: `${prefix}._sys.metrics.*`,
    partitionOf,
    route: (tenant, to, eventType) => {
      switch (to.kind) {
        case "actor":
          return self.mailbox(tenant, partitionOf(to.type, to.id), to.type, to.id)
        case "agent":
          return self.work(tenant, to.name)
        case "topic":
          return self.event(tenant, to.type, to.id, eventType)
        case "ext":
          return `${prefix}.${tenant}.out.${to.name}.${typeToken(eventType)}`
      }
    }
  }
  return self
}
