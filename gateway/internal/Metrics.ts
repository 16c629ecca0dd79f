/**
 * The gateway's Prometheus exposition: its own counters (connections, frames, events sent
 * and their delivery latency, slow and dead clients, auth refusals, HTTP requests, commands,
 * webhooks, dead letters) plus the latest counters each runtime node reported on
 * `<p>._sys.metrics.<node>`. A node whose report is older than three of its periods is
 * dropped, so a dead node disappears from `/metrics` instead of freezing there.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node"
import { Either } from "effect"
import { Message, NodeMetrics, type Subjects } from "../../protocols/index.js"

type Labels = Record<string, string>

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

const labelText = (labels: Labels): string => {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",")
  return l ? `{${l}}` : ""
}

/** snake_case of a camelCase counter name. */
const snake = (k: string) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)

/** Counters, gauges and the delivery-latency histogram of one gateway. */
export class GatewayMetrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>()
  private readonly nodes = new Map<string, typeof NodeMetrics.NodeMetricsReported.payload.Type>()
  private readonly buckets = BUCKETS.map(() => 0)
  private latencyCount = 0
  private latencySum = 0
  private subscription: Subscription | undefined

  constructor(private readonly gauges: () => Record<string, { help: string; value: number }>) {}

  /** Adds `by` (default 1) to a counter. */
  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    let c = this.counters.get(name)
    if (c === undefined) {
      c = { help, values: new Map() }
      this.counters.set(name, c)
    }
    const key = labelText(labels)
    c.values.set(key, (c.values.get(key) ?? 0) + by)
  }

  /** Records the time from an event's creation to its write to `clients` clients. */
  observeDelivery(seconds: number, clients = 1): void {
    this.latencyCount += clients
    this.latencySum += seconds * clients
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.buckets[i]! += clients
  }

  /** Keeps the latest report of each node from `<p>._sys.metrics.*` (core NATS). */
  listen(nc: NatsConnection, subjects: Subjects.Subjects): void {
    const registry = Message.registry(NodeMetrics.all)
    this.subscription = nc.subscribe(subjects.nodeMetricsAll, {
      callback: (err, msg) => {
        if (err) return
        const decoded = registry.decode(msg.data, { maxBytes: 64 * 1024 })
        if (Either.isRight(decoded) && decoded.right.type === NodeMetrics.NodeMetricsReported.type) {
          const report = decoded.right.payload as typeof NodeMetrics.NodeMetricsReported.payload.Type
          this.nodes.set(report.node, report)
        } else this.inc("nexus_gateway_node_reports_refused_total", "Node metrics reports that did not decode.")
      }
    })
  }

  /** Stops listening for node reports. */
  close(): void {
    this.subscription?.unsubscribe()
  }

  /** Nodes with a fresh report. */
  liveNodes(now = Date.now()): ReadonlyArray<typeof NodeMetrics.NodeMetricsReported.payload.Type> {
    for (const [node, r] of this.nodes) if (now - r.at > 3 * r.everySec * 1000) this.nodes.delete(node)
    return [...this.nodes.values()]
  }

  /** The Prometheus text exposition (version 0.0.4). */
  render(): string {
    const out: Array<string> = []
    for (const [name, { help, value }] of Object.entries(this.gauges())) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`)
    }
    for (const [name, c] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`)
      for (const [labels, v] of c.values) out.push(`${name}${labels} ${v}`)
    }
    const h = "nexus_gateway_event_delivery_seconds"
    out.push(`# HELP ${h} Time from an event's creation (envelope ts) to its write to a WebSocket client.`, `# TYPE ${h} histogram`)
    BUCKETS.forEach((b, i) => out.push(`${h}_bucket{le="${b}"} ${this.buckets[i]}`))
    out.push(`${h}_bucket{le="+Inf"} ${this.latencyCount}`, `${h}_sum ${this.latencySum}`, `${h}_count ${this.latencyCount}`)

    const nodes = this.liveNodes()
    out.push("# HELP nexus_node_up Runtime nodes with a fresh metrics report.", "# TYPE nexus_node_up gauge")
    for (const r of nodes) out.push(`nexus_node_up${labelText({ node: r.node })} 1`)
    const names = new Set(nodes.flatMap((r) => Object.keys(r.counters)))
    for (const k of [...names].sort()) {
      const gauge = nodes.some((r) => r.gauges.includes(k))
      const name = `nexus_${snake(k)}${gauge ? "" : "_total"}`
      out.push(`# HELP ${name} Runtime node counter '${k}'.`, `# TYPE ${name} ${gauge ? "gauge" : "counter"}`)
      for (const r of nodes) if (k in r.counters) out.push(`${name}${labelText({ node: r.node })} ${r.counters[k]}`)
    }
    return out.join("\n") + "\n"
  }
}
