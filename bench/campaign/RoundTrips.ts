/**
 * Counts what a NATS connection sends, by kind, while counting is on: JetStream publishes
 * and KV writes (requests that wait for an ack), KV reads, other JetStream API requests,
 * and the fire-and-forget traffic (acks, pull requests). Every outbound message of nats.js
 * goes through the connection's protocol handler, so wrapping its `publish` sees them all.
 */
import type { NatsConnection } from "@nats-io/transport-node"

/** Outbound messages by kind. */
export interface Traffic {
  /** JetStream publishes to streams (request + ack). */
  streamPublishes: number
  /** KV create / update / delete (request + ack). */
  kvWrites: number
  /** KV gets (direct or stream message get). */
  kvReads: number
  /** Other JetStream API requests (consumer info, stream info...). */
  apiRequests: number
  /** Acks, naks, in-progress (fire and forget). */
  acks: number
  /** Pull requests of consumers (fire and forget). */
  pulls: number
  /** Core publishes without a reply subject (e.g. metrics). */
  plain: number
}

/** Traffic that waits for an answer (a round trip to the server). */
export const roundTrips = (t: Traffic): number => t.streamPublishes + t.kvWrites + t.kvReads + t.apiRequests

const empty = (): Traffic => ({ streamPublishes: 0, kvWrites: 0, kvReads: 0, apiRequests: 0, acks: 0, pulls: 0, plain: 0 })

/** A counter attached to one connection. */
export interface TrafficCounter {
  /** Zeroes the counts and starts counting. */
  readonly start: () => void
  /** Stops counting and returns the counts since `start`. */
  readonly stop: () => Traffic
}

/** Wraps the connection's outbound path; counting is off until `start`; `ignore` skips the bench's own traffic. */
export const attach = (nc: NatsConnection, ignore: (subject: string) => boolean = () => false): TrafficCounter => {
  const protocol = (nc as unknown as { protocol: { publish: (subject: string, payload?: unknown, options?: { reply?: string }) => void } })
    .protocol
  const original = protocol.publish.bind(protocol)
  let counting = false
  let t = empty()
  protocol.publish = (subject, payload, options) => {
    if (counting && !ignore(subject)) {
      if (subject.startsWith("$JS.ACK.")) t.acks++
      else if (subject.startsWith("$JS.API.CONSUMER.MSG.NEXT.")) t.pulls++
      else if (subject.startsWith("$JS.API.DIRECT.GET.") || subject.startsWith("$JS.API.STREAM.MSG.GET.")) t.kvReads++
      else if (subject.startsWith("$JS.API.")) t.apiRequests++
      else if (subject.startsWith("$KV.")) t.kvWrites++
      else if (options?.reply) t.streamPublishes++
      else t.plain++
    }
    return original(subject, payload, options)
  }
  return {
    start: () => {
      t = empty()
      counting = true
    },
    stop: () => {
      counting = false
      return { ...t }
    }
  }
}
