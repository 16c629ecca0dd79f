/**
 * One socket write per turn of the event loop instead of one per microtask checkpoint.
 *
 * nats.js buffers what a connection sends and writes the buffer to the socket from a
 * microtask queued by the first command after a write. A node's work is a chain of promise
 * continuations (a batch's state commit, its publishes and its acks resolve one after the
 * other), so the buffer is written many times per turn, a few commands at a time, and every
 * write wakes the server. Here the first write of a turn goes out as before, and the rest
 * waits for the end of the turn (`setImmediate`): whatever else the turn produced goes out
 * together, and a lone message is not delayed. A buffer past the client's own threshold
 * (32 KiB) is still written at once, so memory stays bounded, and `flush()` (PING/PONG)
 * still waits for everything before it.
 *
 * Measured on 2 cores (`bench/profile.ts`, 2,000-contact campaigns, runs interleaved, with
 * every write of a turn deferred; under load a turn carries many writes, so sending its first
 * at once changes little): socket writes to the server 5 per contact → 1, nats-server CPU
 * per contact 1.18–1.25 ms → 0.87–0.97, node CPU per contact 5.48–5.63 ms → 4.97–5.34,
 * 167–172 → 179–193 contacts/s.
 *
 * The client exposes no option for this: the hook is its protocol handler's `flushPending`,
 * which the connection's `protocol` property carries. When a client version lacks that
 * shape nothing is changed and `coalesceWrites` says so (the test of this module fails on
 * such an upgrade, so it cannot pass unnoticed).
 */
import type { NatsConnection } from "@nats-io/transport-node"

interface ProtocolShape {
  flushPending: () => void
  readonly outbound: { size: () => number }
  readonly pendingLimit: number
}

const isProtocol = (p: unknown): p is ProtocolShape => {
  const o = p as Partial<ProtocolShape> | null | undefined
  return (
    typeof o?.flushPending === "function" &&
    typeof o.outbound?.size === "function" &&
    typeof o.pendingLimit === "number"
  )
}

/** Makes `nc` write once per event-loop turn; false (and nothing changed) if the client's shape is unknown. */
export const coalesceWrites = (nc: NatsConnection): boolean => {
  const protocol = (nc as unknown as { protocol?: unknown }).protocol
  if (!isProtocol(protocol)) return false
  const write = protocol.flushPending.bind(protocol)
  // the turn's first write goes out as the client would send it (no added latency when
  // traffic is sparse: a campaign's start is a chain of single messages); what follows in
  // the same turn waits for its end
  let wroteThisTurn = false
  let pending = false
  const turnEnd = () => {
    wroteThisTurn = false
    if (pending) {
      pending = false
      write()
    }
  }
  protocol.flushPending = () => {
    // past the client's threshold: now, as the client would
    if (protocol.outbound.size() >= protocol.pendingLimit) return write()
    if (!wroteThisTurn) {
      wroteThisTurn = true
      setImmediate(turnEnd)
      return write()
    }
    pending = true
  }
  return true
}
