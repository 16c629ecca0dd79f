/**
 * In-process counters of one node: throughput, retries, dead letters, duplicates
 * suppressed by JetStream, in-flight work. Read by the gateway's `/metrics` and by tests.
 */

/** Counters of one node (monotonic unless noted). */
export interface Counters {
  received: number
  handled: number
  published: number
  duplicatesSuppressed: number
  retries: number
  deadLetters: number
  redeliveries: number
  staleSkipped: number
  stateConflicts: number
  /** Messages of a committed outbox published again by a host that loaded the actor. */
  outboxRepublished: number
  /** Durable timers fired (due, their messages published). */
  timersFired: number
  /** Durable timers put back because not yet due (each wait of at most a hop). */
  timerHops: number
  /** Due durable timers put back by the node's fire rate (spread after downtime). */
  timersHeldBack: number
  /**
   * Pulls still open past their expiry that were replaced once the server answered a round
   * trip: under load nats-server 2.9 sometimes ends a partly filled pull without a word
   * (see `Consumption.LAPSE_MARGIN_MS`).
   */
  pullsLapsed: number
  /** Gauge: messages being handled now. */
  inFlight: number
  /** Gauge: resident actors. */
  residentActors: number
  passivations: number
}

/** A fresh set of counters. */
export const make = (): Counters => ({
  received: 0,
  handled: 0,
  published: 0,
  duplicatesSuppressed: 0,
  retries: 0,
  deadLetters: 0,
  redeliveries: 0,
  staleSkipped: 0,
  stateConflicts: 0,
  outboxRepublished: 0,
  timersFired: 0,
  timerHops: 0,
  timersHeldBack: 0,
  pullsLapsed: 0,
  inFlight: 0,
  residentActors: 0,
  passivations: 0
})

/** Prometheus text exposition of a set of counters. */
export const toPrometheus = (c: Counters, labels: Record<string, string> = {}): string => {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/"/g, '\\"')}"`)
    .join(",")
  const suffix = l ? `{${l}}` : ""
  const gauges = new Set(["inFlight", "residentActors"])
  return Object.entries(c)
    .map(([k, v]) => {
      const name = `nexus_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}${gauges.has(k) ? "" : "_total"}`
      return `# TYPE ${name} ${gauges.has(k) ? "gauge" : "counter"}\n${name}${suffix} ${v}`
    })
    .join("\n")
}
