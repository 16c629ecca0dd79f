/**
 * Live fan-out: one JetStream ordered consumer per distinct subscription target (a
 * campaign's events, a feed) shared by every client that has caught up with it, instead of
 * one consumer per client. Each stored message is decoded and encoded once and written to
 * every attached client whose socket is under its buffer limit; a client over the limit is
 * detached at once (the tail never waits for anyone) and goes back to reading its own
 * consumer from where it stopped, where backpressure and the slow-client timeout apply.
 *
 * Ordering without gaps or repeats: a tail records the last sequence it has delivered; a
 * client may attach only when it has seen at least that far (everything after will come
 * from the tail) and ignores tail messages it has already seen. Attaching and delivering
 * are synchronous, so nothing slips between them.
 */
import { type Consumer, type ConsumerMessages, DeliverPolicy } from "@nats-io/jetstream"
import { Effect, Either } from "effect"
import { type Envelope, Trace } from "../../protocols/index.js"
import * as Frame from "../Frame.js"
import { type Target, toEnvelope } from "./Subscription.js"

/** A client attached to a tail. */
export interface Attached {
  readonly tenant: string
  /** Last sequence this client has received. */
  lastSeq: number
  /** Writes a frame unless the socket is over its limit; false = not written. */
  readonly trySend: (frame: Buffer) => boolean
  /** False after an unsubscribe: nothing more may be written. */
  readonly isLive: () => boolean
  /** Called once when the tail lets the client go (too slow, or the tail failed). */
  readonly detached: () => void
}

interface Tail {
  lastSeq: number
  readonly clients: Set<Attached>
  consumer: Consumer | undefined
  messages: ConsumerMessages | undefined
  stopped: boolean
}

/** The tails of one gateway. */
export class Fanout {
  private readonly tails = new Map<string, Tail>()
  private readonly deleting = new Set<Promise<unknown>>()
  private closed = false

  constructor(private readonly run: <A, E>(effect: Effect.Effect<A, E>) => void) {}

  /** Attached clients over all tails. */
  attached(): number {
    let n = 0
    for (const t of this.tails.values()) n += t.clients.size
    return n
  }

  /** Live tails (one JetStream consumer each). */
  size(): number {
    return this.tails.size
  }

  /**
   * Attaches a client that has seen everything up to `client.lastSeq`, creating the tail
   * (reading from `lastSeq + 1`) if there is none. False when the tail is ahead of it.
   */
  attach(target: Target, client: Attached): boolean {
    if (this.closed) return false
    const key = `${target.stream}|${target.filter}`
    let tail = this.tails.get(key)
    if (tail === undefined) {
      tail = { lastSeq: client.lastSeq, clients: new Set(), consumer: undefined, messages: undefined, stopped: false }
      this.tails.set(key, tail)
      this.start(key, tail, target)
    }
    if (tail.lastSeq > client.lastSeq) return false
    tail.clients.add(client)
    return true
  }

  /** Detaches a client (unsubscribe, close); the last one out stops the tail. */
  detach(target: Target, client: Attached): void {
    const key = `${target.stream}|${target.filter}`
    const tail = this.tails.get(key)
    if (tail === undefined || !tail.clients.delete(client)) return
    if (tail.clients.size === 0) this.stop(key, tail)
  }

  /**
   * Stops every tail and waits until their consumers are deleted (gateway shutdown). Its
   * clients are not let go (they are being closed); no tail starts after this.
   */
  close(): Effect.Effect<void> {
    this.closed = true
    for (const [key, tail] of [...this.tails]) this.stop(key, tail)
    return Effect.promise(() => Promise.all([...this.deleting])).pipe(Effect.timeout("2 seconds"), Effect.ignore)
  }

  private stop(key: string, tail: Tail, failed = false): void {
    if (tail.stopped) return
    tail.stopped = true
    if (this.tails.get(key) === tail) this.tails.delete(key)
    tail.messages?.stop()
    this.drop(tail)
    if (failed) for (const c of tail.clients) c.detached()
    tail.clients.clear()
  }

  private drop(tail: Tail): void {
    const consumer = tail.consumer
    tail.consumer = undefined
    if (consumer === undefined) return
    const p = consumer.delete().catch(() => false)
    this.deleting.add(p)
    void p.finally(() => this.deleting.delete(p))
  }

  private deliver(tail: Tail, target: Target, seq: number, env: Envelope.Envelope): void {
    tail.lastSeq = seq
    if (tail.clients.size === 0) return
    // encoded once for every client (a Buffer: `ws` then skips the per-client UTF-8 encoding)
    const frame = Buffer.from(Frame.encodeServer(target.frame(seq, env)))
    for (const c of tail.clients) {
      if (seq <= c.lastSeq) continue
      if (!c.isLive()) {
        tail.clients.delete(c)
        continue
      }
      if (!c.trySend(frame)) {
        tail.clients.delete(c)
        c.detached()
        continue
      }
      c.lastSeq = seq
      target.onSent?.(env, 1)
    }
  }

  private start(key: string, tail: Tail, target: Target): void {
    const tenant = target.filter.split(".")[1] ?? ""
    const loop = Effect.gen(this, function* () {
      const consumer = yield* Effect.tryPromise(() =>
        target.js.consumers.get(target.stream, {
          filter_subjects: target.filter,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: tail.lastSeq + 1
        })
      )
      tail.consumer = consumer
      const messages = yield* Effect.tryPromise(() => consumer.consume({ max_messages: target.pullBatch }))
      tail.messages = messages
      if (tail.stopped) {
        messages.stop()
        this.drop(tail)
      }
      const it = messages[Symbol.asyncIterator]()
      while (!tail.stopped) {
        const next = yield* Effect.tryPromise(() => it.next())
        if (next.done === true) break
        const env = toEnvelope(tenant, next.value)
        if (Either.isLeft(env)) {
          tail.lastSeq = next.value.seq
          continue
        }
        const deliver = Effect.sync(() => this.deliver(tail, target, next.value.seq, env.right))
        yield* Trace.continueTrace(deliver, "gateway.deliver", env.right.trace.traceparent, {
          attributes: { "nexus.type": env.right.type, "nexus.message_id": env.right.id, "nexus.key": target.key, "nexus.clients": tail.clients.size }
        })
      }
    }).pipe(
      Effect.catchAll((e) => Effect.logWarning("fan-out tail failed; its clients read on their own", e)),
      Effect.ensuring(Effect.sync(() => !tail.stopped && this.stop(key, tail, !this.closed)))
    )
    this.run(loop)
  }
}
