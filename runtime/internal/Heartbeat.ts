/**
 * In-progress acks for messages being handled: one timer per host sends `working()` for
 * every message in flight, so a long handler (a model call) keeps its message instead of
 * having it redelivered after `ack_wait`. Cheaper than a timer per message.
 */
import type { JsMsg } from "@nats-io/jetstream"

/** Messages kept alive while they are handled. */
export interface Heartbeat {
  readonly add: (msg: JsMsg) => void
  readonly remove: (msg: JsMsg) => void
  readonly stop: () => void
}

/** Starts a heartbeat that calls `working()` every `everyMs` on messages in flight for longer than that. */
export const make = (everyMs = 4_000): Heartbeat => {
  const inFlight = new Map<JsMsg, number>()
  const timer = setInterval(() => {
    const now = Date.now()
    for (const [msg, since] of inFlight) if (now - since >= everyMs) msg.working()
  }, everyMs)
  timer.unref()
  return {
    add: (msg) => void inFlight.set(msg, Date.now()),
    remove: (msg) => void inFlight.delete(msg),
    stop: () => clearInterval(timer)
  }
}
