/**
 * The channel service over real providers. For each delivery: the attempt is written to
 * the attempt ledger *before* the provider is called (with the per-account daily throttle
 * and concurrency limit checked in the same transaction), then finished with the outcome.
 * A re-run finds its attempt: finished → the recorded outcome, nothing sent; pending with a
 * provider id → still pending; pending without one → reconciled with the provider (Vapi
 * `calls.list`) or, where the provider cannot tell, reported as uncertain rather than sent
 * twice. A limit reached defers the delivery instead of failing it.
 */
import { Clock, Effect, Layer, Option } from "effect"
import { type Attempt, AttemptLedger } from "../../storage/AttemptLedger.js"
import { Channels, type DeliveryRequest, type DeliveryResult } from "../Channels.js"
import type { ChannelAdapter, SendResult } from "./ChannelAdapter.js"
import * as ChannelError from "./ChannelError.js"

const DAY = 24 * 3600 * 1000
/** Pending attempts older than this stop counting against the concurrency limit (a lost webhook). */
export const ACTIVE_TTL_MS = 30 * 60 * 1000
/** How long a delivery refused for capacity waits before it tries again. */
export const CAPACITY_RETRY_MS = 15_000

const fromAttempt = (a: Attempt): DeliveryResult => {
  if (a.status === "pending") return { _tag: "Pending", providerRef: a.providerRef ?? "", detail: "placed earlier; outcome pending", duplicate: true }
  const r = (a.result ?? {}) as { durationSec?: number; transcript?: string | null }
  return {
    _tag: "Delivered",
    outcome: (a.outcome ?? "failed") as Extract<DeliveryResult, { _tag: "Delivered" }>["outcome"],
    detail: a.detail ?? "",
    durationSec: r.durationSec ?? 0,
    transcript: r.transcript ?? null,
    duplicate: true
  }
}

const toResult = (s: SendResult, duplicate: boolean): DeliveryResult =>
  s._tag === "Pending"
    ? { _tag: "Pending", providerRef: s.providerRef, detail: s.detail, duplicate }
    : { _tag: "Delivered", outcome: s.outcome, detail: s.detail, durationSec: s.durationSec, transcript: s.transcript, duplicate }

/** The live channel service over the given adapters (one per channel). */
export const make = (adapters: ReadonlyArray<ChannelAdapter>) =>
  Effect.gen(function* () {
    const ledger = yield* AttemptLedger
    const byChannel = new Map(adapters.map((a) => [a.channel, a]))

    const settle = (r: DeliveryRequest, s: SendResult) =>
      s._tag === "Pending"
        ? ledger.setProviderRef(r.tenant, r.idempotencyKey, s.providerRef)
        : ledger.finish(r.tenant, r.idempotencyKey, {
            status: s.outcome === "failed" ? "failed" : "done",
            outcome: s.outcome,
            detail: s.detail,
            providerRef: s.providerRef,
            result: { durationSec: s.durationSec, transcript: s.transcript }
          })

    const send = (adapter: ChannelAdapter, r: DeliveryRequest) =>
      adapter.send(r).pipe(
        Effect.tap((s) => settle(r, s)),
        Effect.map((s) => toResult(s, false)),
        Effect.catchTag("ChannelError", (e) => {
          if (e.sent === "no" && e.retryable) return Effect.zipRight(ledger.forget(r.tenant, r.idempotencyKey), Effect.fail(e))
          if (e.sent === "no") {
            const failed: SendResult = { _tag: "Done", outcome: "failed", detail: `${e.reason}: ${e.message}`, providerRef: null, durationSec: 0, transcript: null }
            return Effect.as(settle(r, failed), toResult(failed, false))
          }
          return Effect.fail(e)
        })
      )

    const deliver = Effect.fn("Channels.live.deliver")(function* (r: DeliveryRequest) {
      const adapter = byChannel.get(r.channel)
      if (adapter === undefined) {
        return yield* Effect.fail(ChannelError.make(r.channel, "NotConfigured", "no", `no provider is configured for ${r.channel}`))
      }
      const now = yield* Clock.currentTimeMillis
      const dayStart = Math.floor(now / DAY) * DAY
      const account = adapter.account(r)
      const begun = yield* ledger.begin(
        { tenantId: r.tenant, idempotencyKey: r.idempotencyKey, channel: r.channel, account, recipient: r.to },
        { maxPerDay: adapter.limits.maxPerDay, dayStart: new Date(dayStart), maxActive: adapter.limits.maxActive, activeSince: new Date(now - ACTIVE_TTL_MS) }
      )
      switch (begun._tag) {
        case "Refused":
          return begun.reason === "daily-limit"
            ? ({ _tag: "Deferred", reason: `throttle:${r.channel}:${account} used ${begun.used}/${adapter.limits.maxPerDay} today`, retryAt: dayStart + DAY } satisfies DeliveryResult)
            : ({ _tag: "Deferred", reason: `capacity:${r.channel}:${account} ${begun.used}/${adapter.limits.maxActive} active`, retryAt: now + CAPACITY_RETRY_MS } satisfies DeliveryResult)
        case "Began":
          return yield* send(adapter, r)
        case "Existing": {
          const a = begun.attempt
          if (a.status !== "pending" || a.providerRef !== null) return fromAttempt(a)
          const found = adapter.reconcile ? yield* adapter.reconcile(a) : Option.none<SendResult>()
          if (Option.isSome(found)) {
            yield* settle(r, found.value)
            return toResult(found.value, true)
          }
          // the provider has no trace of it: a reconciling provider may be tried again; others cannot tell
          if (adapter.reconcile) return yield* send(adapter, r)
          const uncertain: SendResult = {
            _tag: "Done",
            outcome: "failed",
            detail: "uncertain: an earlier attempt stopped mid-send; not sent again",
            providerRef: null,
            durationSec: 0,
            transcript: null
          }
          yield* settle(r, uncertain)
          return toResult(uncertain, true)
        }
      }
    })

    return { deliver }
  })

/** The live channels as a layer. */
export const layer = (adapters: ReadonlyArray<ChannelAdapter>): Layer.Layer<Channels, never, AttemptLedger> =>
  Layer.effect(Channels, make(adapters))
