/**
 * Pull consumption for actor partitions, agents and the command router: bounded pulls that
 * survive the server. A pull that fails (a NATS server restarting answers 409 "server
 * shutdown", a consumer leader moves) is replaced after a short pause, until stopped.
 * Without this a partition or an agent would silently stop being served while its node
 * still believes it serves it. A consumption given up for another node to take over
 * (`release`) drops nothing the server already sent it.
 */
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream"

/** A running consumption. */
export interface Consumption {
  /** Stops pulling; resolves when the loop has ended (bounded wait). */
  readonly stop: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Pull requests expire after this (the client then pulls again); the server's idle
 * heartbeats come at half of it, and two missed ones make the client re-pull. The
 * library's default (30 s) let a pull lost in a consumer-leader move stall work for a
 * minute or more. A consumption given up (`release`) keeps its pulls until they expire and
 * a drain waits for them, so they are short: this bounds how late a rebalance or a drain
 * hands a message over.
 */
export const EXPIRES_MS = 2_000

/** A consumption that handles up to `concurrency` messages at once. */
export interface BoundedConsumption extends Consumption {
  /** Resolves when no handler is running. */
  readonly idle: () => Promise<void>
  /**
   * Stops pulling without dropping what is on its way. `stop` closes the pulls, and a
   * message the server had already sent to one is dropped with it (it comes back only after
   * its ack wait); here the pulls stay open until they expire, and whatever still arrives
   * goes back with a delay that outlasts them, so the server hands it to another consumer.
   * Resolves when pulling has stopped; `ended` when the last pull has ended.
   */
  readonly release: () => Promise<void>
  /** Resolves when no pull is outstanding (after `stop` or `release`). */
  readonly ended: () => Promise<void>
  /** Pulls that stopped counting as outstanding at their expiry, the server answering (see `LAPSE_MARGIN_MS`). */
  readonly lapsed: () => number
}

/** Options of a bounded consumption. */
export interface BoundedOptions {
  /** How long a pull waits at the server (at least 1 s; its heartbeats come at half of it). Default `EXPIRES_MS`. */
  readonly expiresMs?: number
  /**
   * A round trip to the server on the consumer's connection (`nc.flush()`): resolves once
   * the server has processed everything sent before it. With it, a pull still open on the
   * client past its expiry is replaced as soon as the server is known to be alive (see
   * `LAPSE_MARGIN_MS`); without it, only when the pull ends.
   */
  readonly ping?: () => Promise<unknown>
  /** Called for each pull that lapsed (see `ping`). */
  readonly onLapse?: () => void
}

/**
 * How long past its expiry a pull still open on the client counts as outstanding. Under
 * load nats-server 2.9 sometimes ends a partly filled pull without a word (no expiry status,
 * no more idle heartbeats), and the client notices only when two heartbeats are missed: a
 * 2 s pull ends after 4 s, then the pause after a failed pull adds 0.5 s. Meanwhile the
 * consumer has no pull open at the server and its messages wait (a bench's campaign start
 * that took 3.5 s instead of 20 ms fits: 2 s of such a pull, then the pause). Measured over 150
 * campaign starts after a 1,100-contact campaign: 16 partition pulls of 256, each filled by
 * 19-64 messages, lapsed here, and every one was ended by the heartbeat check 1.7-2.7 s
 * later. So past its expiry and this margin, once a round trip shows the server alive (a frozen
 * server is not waited past: a pull asked for then could be given up by the client's
 * heartbeat check while the server still delivers to it), the pull's unfilled part stops
 * counting and the next pull goes out; the lapsed pull stays open, so whatever the server
 * still sends it is handled (one pull's worth over the bound at most, and only then).
 */
export const LAPSE_MARGIN_MS = 250

/** What is handed back while releasing waits this long past the last pull's expiry. */
const HAND_BACK_MARGIN_MS = 250

/**
 * Resolves when none of `consumptions` has a pull outstanding, or at the latest when pulls
 * of `expiresMs` asked for now would have expired (and a margin).
 */
export const allEnded = (consumptions: Iterable<BoundedConsumption>, expiresMs: number = EXPIRES_MS): Promise<void> =>
  Promise.race([
    Promise.all([...consumptions].map((c) => c.ended())).then(() => undefined),
    new Promise<void>((r) => setTimeout(r, expiresMs + 500).unref())
  ])

/**
 * How close to its expiry a pull may be given up by the client's heartbeat check and still
 * count as having simply expired. Under load nats-server 2.9 sometimes sends neither the
 * idle heartbeat nor the expiry status of a partly filled pull (measured: partition pulls
 * of 2 s ended by the client's heartbeat check after 4 s, 0-3 times per 3,000-contact
 * campaign); the server delivers nothing to an expired pull, so that is no failure.
 */
const EXPIRY_SLACK_MS = 250

/** The client gave a pull up because the server's idle heartbeats stopped coming. */
const heartbeatsMissed = (e: unknown) => e instanceof Error && e.message === "heartbeats missed"

/**
 * Consumes with at most `concurrency` handlers in flight: `handle` starts one and calls
 * `done` when it finishes. Pulls never ask for more messages than there are free handler
 * slots (running handlers plus messages asked for and not yet arrived stay within
 * `concurrency`), so every message the server hands over starts at once: none waits in a
 * client buffer, unacknowledged and without in-progress acks, until its `ack_wait` runs
 * out and the server hands it to another worker as well (with a refilling `consume`, a
 * busy worker held up to twice its concurrency that way). While a slot is free a pull is
 * outstanding; as slots free up, further pulls of at least a quarter of the slots keep
 * the pipeline full. A pull that is lost (a server restart, a consumer leader moving)
 * ends with its expiry or two missed heartbeats, and a new one replaces it.
 */
export const startBounded = (
  consumer: Consumer,
  concurrency: number,
  handle: (msg: JsMsg, done: () => void) => void,
  onError: (e: unknown) => void = () => {},
  options: BoundedOptions = {}
): BoundedConsumption => {
  const expires = Math.max(1_000, options.expiresMs ?? EXPIRES_MS)
  const chunk = Math.max(1, Math.floor(concurrency / 4))
  let running = 0
  /** Messages asked for by outstanding pulls and not yet arrived. */
  let requested = 0
  /** Pulls outstanding, and when the last of them expires at the latest. */
  let open = 0
  let lastExpiry = 0
  let stopped = false
  let releasing = false
  let failedAt = 0
  /** Pulls failed, and how many of them a round trip answered since (see `answering`). */
  let failures = 0
  let answered = 0
  let lapses = 0
  const pulls = new Set<ConsumerMessages>()
  let waiting: Array<() => void> = []
  const notify = () => {
    const ws = waiting
    waiting = []
    for (const w of ws) w()
  }
  const wait = () => new Promise<void>((resolve) => waiting.push(resolve))
  const done = () => {
    running--
    notify()
  }
  /** One pull of `n` messages, run until it is filled, expires or fails. */
  const pull = async (n: number) => {
    requested += n
    open++
    lastExpiry = Math.max(lastExpiry, Date.now() + expires)
    let arrived = 0
    const startedAt = Date.now()
    // past its expiry, with the server answering: no longer outstanding (see `LAPSE_MARGIN_MS`)
    let ended = false
    let lapsed = false
    const ping = options.ping
    const lapse =
      ping === undefined
        ? undefined
        : setTimeout(() => {
            ping().then(
              () => {
                if (ended || lapsed) return
                lapsed = true
                lapses++
                requested -= n - arrived
                options.onLapse?.()
                notify()
              },
              () => {}
            )
          }, expires + LAPSE_MARGIN_MS).unref()
    try {
      const messages = await consumer.fetch({ max_messages: n, expires })
      pulls.add(messages)
      try {
        for await (const m of messages) {
          arrived++
          if (!lapsed) requested--
          // stopped: what still arrives goes back at once rather than after its ack_wait;
          // released: once no pull of ours can take it again
          if (stopped) {
            m.nak(releasing ? Math.max(1, lastExpiry - Date.now() + HAND_BACK_MARGIN_MS) : undefined)
            continue
          }
          running++
          handle(m, done)
        }
      } finally {
        pulls.delete(messages)
      }
    } catch (e) {
      if (!stopped) {
        // the pause before the next pull stays either way, and the next pull waits for the
        // server to answer (`answering`): a pull asked for at once could reach a server that
        // is slow to answer late, and be given up by the client's heartbeat check while the
        // server still delivers to it (measured with a frozen server: 3 in 5 runs had a
        // message wait out its ack wait without the pause, 1 in 8 with the pause alone);
        // not after a pull that lapsed: the server answered after its expiry, and the pull
        // that replaced it went out then
        if (!lapsed) {
          failedAt = Date.now()
          failures++
        }
        // the heartbeat check failing a pull that has reached its expiry is a late end,
        // not a failure worth a warning
        const expired = heartbeatsMissed(e) && Date.now() - startedAt >= expires - EXPIRY_SLACK_MS
        if (!expired) onError(e)
      }
    } finally {
      ended = true
      clearTimeout(lapse)
      if (!lapsed) requested -= n - arrived
      open--
      notify()
    }
  }
  /**
   * After a failed pull, resolves once a round trip (`ping`) shows the server answering. The
   * client's heartbeat check counts from when it sends a pull, the server's heartbeats from
   * when it reads it. A pull sent to a server that is frozen (or stalled past a heartbeat
   * interval) reaches it only when it wakes, and the client may give the pull up a moment
   * later, having missed two heartbeats the server never owed it yet, while the server
   * delivers to it: a message delivered then waits out its ack wait (measured with a server
   * frozen for 2.5 s under pulls of 1 s: 1 run in 8 lost a message for the ack wait that
   * way, the pull having gone out during the freeze once the pause after a failed pull had
   * run out). A pull that fails is the sign of such a stall, so the next waits until the
   * server answers. Not covered: a stall that begins between the answer and the pull's
   * arrival, or one that a pull sent in the normal course meets before any pull has failed.
   */
  const answering = async () => {
    const ping = options.ping
    if (ping === undefined) return
    while (!stopped && failures > answered) {
      const ok = await ping().then(
        () => true,
        () => false
      )
      // the server answered after every failure seen by now
      if (ok) answered = failures
      else await sleep(500)
    }
  }
  const loop = (async () => {
    while (!stopped) {
      const free = concurrency - running - requested
      if (free >= chunk || (free > 0 && requested === 0)) {
        // after a failed pull (the server restarting, say), pause before the next, and
        // pull only once the server answers
        const pause = failedAt + 500 - Date.now()
        if (pause > 0) await sleep(pause)
        if (failures > answered) await answering()
        if (stopped) break
        void pull(concurrency - running - requested)
      }
      await wait()
    }
  })()
  return {
    stop: async () => {
      stopped = true
      notify()
      // close() may wait until the iterator is read again: do not wait on it for long
      await Promise.race([Promise.all([...pulls].map((p) => p.close().catch(() => undefined))), sleep(2_000)])
      await Promise.race([loop, sleep(2_000)])
    },
    release: async () => {
      stopped = true
      releasing = true
      notify()
      await Promise.race([loop, sleep(2_000)])
    },
    idle: async () => {
      while (running > 0) await wait()
    },
    ended: async () => {
      while (open > 0) await wait()
    },
    lapsed: () => lapses
  }
}
