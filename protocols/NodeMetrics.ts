/**
 * The periodic metrics report of a runtime node, published on core NATS (not stored) at
 * `<p>._sys.metrics.<node>`; the gateway keeps the latest report of each node and exposes
 * them on its Prometheus `/metrics`. Counter names are the runtime's `Metrics.Counters`
 * keys; `gauges` names those that are gauges (the rest are monotonic counters).
 */
import { Schema } from "effect"
import * as Message from "./Message.js"

/** A node's counters at one moment. */
export const NodeMetricsReported = Message.define(
  "runtime.node-metrics",
  Schema.Struct({
    node: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
    counters: Schema.Record({ key: Schema.String.pipe(Schema.pattern(/^[A-Za-z][A-Za-z0-9]*$/)), value: Schema.Number }),
    gauges: Schema.Array(Schema.String),
    partitions: Schema.Int,
    startedAt: Schema.Number,
    at: Schema.Number,
    /** Seconds until the next report; a report older than three periods is dropped. */
    everySec: Schema.Number
  }),
  { description: "A runtime node's counters (throughput, retries, dead letters, in-flight), reported periodically." }
)

/** The reserved tenant token of system subjects. */
export const SYSTEM_TENANT = "_sys"

/** Every metrics message. */
export const all: ReadonlyArray<Message.MessageType> = [NodeMetricsReported]
