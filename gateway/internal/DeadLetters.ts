/**
 * The gateway's side of dead letters: recording refused input (HTTP bodies, webhook
 * messages, WebSocket frames) as dead-letter records with a typed reason and the original
 * bytes, and retrying a stored dead letter by republishing its original bytes to its
 * original subject (with a de-duplication id derived from the record, so a double click
 * retries once).
 */
import { randomBytes } from "node:crypto"
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream"
import { headers as natsHeaders } from "@nats-io/transport-node"
import { Data, Effect, Either } from "effect"
import { Address, DeadLetter, Ids, Message, type Subjects } from "../../protocols/index.js"

/** Why a retry could not be done; `status` is the HTTP answer. */
export class RetryRefused extends Data.TaggedError("RetryRefused")<{
  readonly status: 404 | 403 | 409 | 503
  readonly error: string
  readonly message: string
}> {
  readonly retryable = false
}

/** What was refused, for the record. */
export interface Refusal {
  readonly reason: string
  readonly message: string
  /** Who refused, e.g. `ext:gateway-http`. */
  readonly receiver: string
  /** Where the input was headed (a NATS subject), or where it came from (`http:POST /api/...`). */
  readonly subject: string
  readonly originalType: string | null
  readonly data: Uint8Array
}

/** The gateway's dead-letter operations. */
export interface DeadLetters {
  /** Publishes a dead-letter record; failures are logged, never raised. */
  readonly record: (tenant: string, refusal: Refusal) => Effect.Effect<void>
  /** Republishes the dead letter stored at `seq` if it belongs to `tenant`. */
  readonly retry: (
    tenant: string,
    seq: number
  ) => Effect.Effect<{ readonly subject: string; readonly seq: number; readonly duplicate: boolean }, RetryRefused>
}

const registry = Message.registry([DeadLetter.DeadLettered])
const MAX_KEPT_BYTES = 64 * 1024

/** Builds the operations over a JetStream client. */
export const make = (js: JetStreamClient, jsm: JetStreamManager, subjects: Subjects.Subjects): DeadLetters => {
  const record = (tenant: string, r: Refusal) =>
    Effect.suspend(() => {
      const id = `gw-${randomBytes(12).toString("base64url")}`
      const env = {
        id: Ids.MessageId.make(id),
        tenant: tenant as Ids.TenantId,
        from: Address.ext("gateway"),
        to: Address.ext("dead-letters"),
        correlationId: id,
        causationId: null,
        ts: Date.now(),
        trace: { traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01` }
      }
      const payload: typeof DeadLetter.DeadLettered.payload.Type = {
        reason: r.reason,
        error: { _tag: r.reason, message: r.message.slice(0, 2000) },
        receiver: r.receiver,
        subject: r.subject,
        stream: null,
        streamSeq: null,
        deliveries: 1,
        originalType: r.originalType,
        originalId: null,
        headers: {},
        dataBase64: Buffer.from(r.data.subarray(0, MAX_KEPT_BYTES)).toString("base64"),
        at: Date.now()
      }
      return Effect.tryPromise(() =>
        js.publish(subjects.deadLetter(tenant, r.reason), registry.encode(env, DeadLetter.DeadLettered, payload), { msgID: id })
      )
    }).pipe(
      Effect.asVoid,
      Effect.catchAll((e) => Effect.logWarning("could not record a dead letter", e)),
      Effect.withSpan("gateway.dead-letter")
    )

  const retry = (tenant: string, seq: number) =>
    Effect.gen(function* () {
      const stored = yield* Effect.tryPromise({
        try: () => jsm.streams.getMessage(subjects.streams.deadLetters, { seq }),
        catch: () => new RetryRefused({ status: 404, error: "not_found", message: `no dead letter at sequence ${seq}` })
      })
      if (stored === null || !stored.subject.startsWith(`${subjects.prefix}.${tenant}.dlq.`)) {
        return yield* new RetryRefused({ status: 404, error: "not_found", message: `no dead letter of this tenant at sequence ${seq}` })
      }
      const decoded = registry.decode(stored.data)
      if (Either.isLeft(decoded) || decoded.right.type !== DeadLetter.DeadLettered.type) {
        return yield* new RetryRefused({ status: 409, error: "not_retryable", message: "the record is not a readable dead letter" })
      }
      const rec = decoded.right.payload as typeof DeadLetter.DeadLettered.payload.Type
      if (!rec.subject.startsWith(`${subjects.prefix}.${tenant}.`) || rec.subject.includes(".dlq.")) {
        return yield* new RetryRefused({
          status: rec.subject.startsWith(`${subjects.prefix}.`) ? 403 : 409,
          error: "not_retryable",
          message: `the dead letter's original subject '${rec.subject}' is not a NATS subject of this tenant`
        })
      }
      const h = natsHeaders()
      for (const [k, vs] of Object.entries(rec.headers)) {
        if (k.toLowerCase() === "nats-msg-id" || k.toLowerCase().startsWith("nats-expected")) continue
        for (const v of vs) h.append(k, v)
      }
      const ack = yield* Effect.tryPromise({
        try: () =>
          js.publish(rec.subject, Buffer.from(rec.dataBase64, "base64"), { msgID: `retry-${seq}`, headers: h }),
        catch: (e) => new RetryRefused({ status: 503, error: "publish_failed", message: `republish failed: ${String(e)}` })
      })
      return { subject: rec.subject, seq: ack.seq, duplicate: ack.duplicate }
    }).pipe(Effect.withSpan("gateway.retry-dead-letter", { attributes: { tenant, seq } }))

  return { record, retry }
}
