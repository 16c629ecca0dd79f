/**
 * A pull consumption that survives the server: when the iterator ends with an error (a
 * NATS server restarting answers 409 "server shutdown", a consumer leader moves) it is
 * opened again after a short pause, until stopped. Without this a partition or an agent
 * would silently stop being served while its node still believes it serves it.
 */
import type { ConsumeMessages, Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream"

/** A running consumption. */
export interface Consumption {
  /** Stops pulling; resolves when the loop has ended (bounded wait). */
  readonly stop: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Consumes until stopped; `onMessage` may return a promise to hold back the next pull. */
export const start = (
  consumer: Consumer,
  options: ConsumeMessages,
  onMessage: (msg: JsMsg) => void | Promise<void>,
  onError: (e: unknown) => void = () => {}
): Consumption => {
  let stopped = false
  let current: ConsumerMessages | undefined
  const loop = (async () => {
    while (!stopped) {
      try {
        current = await consumer.consume(options)
        if (stopped) break
        for await (const m of current) {
          const held = onMessage(m)
          if (held) await held
        }
        if (!stopped) onError(new Error("consumer iterator ended"))
      } catch (e) {
        if (!stopped) onError(e)
      }
      if (!stopped) await sleep(500)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      // close() may wait until the iterator is read again: do not wait on it for long
      await Promise.race([current?.close().catch(() => undefined), sleep(2_000)])
      await Promise.race([loop, sleep(2_000)])
    }
  }
}

/** A consumption that handles up to `concurrency` messages at once. */
export interface BoundedConsumption extends Consumption {
  /** Resolves when no handler is running. */
  readonly idle: () => Promise<void>
}

/**
 * Consumes with at most `concurrency` handlers in flight: `handle` starts one and calls
 * `done` when it finishes. While all are busy the iterator is not read, so the consumer
 * stops pulling (backpressure); what it buffers is bounded by `concurrency * 2`.
 */
export const startBounded = (
  consumer: Consumer,
  concurrency: number,
  handle: (msg: JsMsg, done: () => void) => void,
  onError: (e: unknown) => void = () => {}
): BoundedConsumption => {
  let running = 0
  let wake: (() => void) | null = null
  const done = () => {
    running--
    const w = wake
    wake = null
    w?.()
  }
  const wait = () => new Promise<void>((resolve) => (wake = resolve))
  const consumption = start(
    consumer,
    { max_messages: concurrency * 2 },
    async (msg) => {
      running++
      handle(msg, done)
      while (running >= concurrency) await wait()
    },
    onError
  )
  return {
    stop: consumption.stop,
    idle: async () => {
      while (running > 0) await wait()
    }
  }
}
