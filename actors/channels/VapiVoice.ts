/**
 * AI voice calls through Vapi (`@vapi-ai/server-sdk`). `POST /call` has no idempotency key
 * and the SDK retries twice by default, so its retries are off (`maxRetries: 0`) and the
 * attempt is recorded before dialing (by `LiveChannels`). The call carries metadata tying
 * it to tenant, campaign, contact and attempt (the idempotency key), as `metadata` and as
 * `assistantOverrides.metadata`, so webhooks route back and `calls.list` reconciles an
 * attempt a crash left unfinished. The outcome arrives later by webhook (see `VoiceCall`).
 */
import { VapiClient, VapiError, VapiTimeoutError } from "@vapi-ai/server-sdk"
import { Effect, Option, Redacted } from "effect"
import type { Attempt } from "../../storage/AttemptLedger.js"
import type { DeliveryRequest } from "../Channels.js"
import type { ChannelAdapter, SendResult } from "./ChannelAdapter.js"
import * as ChannelError from "./ChannelError.js"

/** Settings of the Vapi channel. */
export interface VapiSettings {
  readonly apiKey: Redacted.Redacted
  /** Default: the SDK's. */
  readonly baseUrl?: string | undefined
  readonly phoneNumberId: string
  readonly assistantId: string
  /** Concurrent calls per account. Default 10 (Vapi's default). */
  readonly maxConcurrent?: number
  /** Calls per day per account; null for none. */
  readonly maxPerDay?: number | null
  /** Request timeout in seconds. Default 20. */
  readonly timeoutSeconds?: number
}

/** The metadata a call carries. */
export const metadataOf = (r: DeliveryRequest) => ({
  tenant: r.tenant,
  campaignId: r.campaignId,
  contactId: r.contactId,
  idempotencyKey: r.idempotencyKey
})

const convert = (e: unknown): ChannelError.ChannelError => {
  if (e instanceof VapiTimeoutError) return ChannelError.make("voice", "Timeout", "unknown", e.message, { cause: e })
  if (e instanceof VapiError) {
    return e.statusCode === undefined
      ? ChannelError.make("voice", "Unavailable", "unknown", e.message, { cause: e })
      : ChannelError.fromStatus("voice", e.statusCode, `vapi ${e.statusCode}: ${JSON.stringify(e.body ?? e.message).slice(0, 300)}`, e)
  }
  return ChannelError.make("voice", "Unknown", "unknown", String(e), { cause: e })
}

const keyOf = (call: unknown): string | undefined => {
  const c = call as { metadata?: { idempotencyKey?: string }; assistantOverrides?: { metadata?: { idempotencyKey?: string } } }
  return c.metadata?.idempotencyKey ?? c.assistantOverrides?.metadata?.idempotencyKey
}

/** The adapter over an SDK client. */
export const fromClient = (client: VapiClient, settings: VapiSettings): ChannelAdapter => ({
  channel: "voice",
  limits: { maxPerDay: settings.maxPerDay ?? null, maxActive: settings.maxConcurrent ?? 10 },
  account: () => `vapi:${settings.phoneNumberId}`,
  send: (r) =>
    Effect.tryPromise({
      try: () =>
        client.calls.create(
          {
            phoneNumberId: settings.phoneNumberId,
            assistantId: settings.assistantId,
            customer: { number: r.to },
            name: `${r.campaignId}/${r.contactId}`.slice(0, 40),
            assistantOverrides: { metadata: metadataOf(r), variableValues: { script: r.body } },
            // read back by the webhook (`call.metadata`); the SDK's types do not list it
            ...({ metadata: metadataOf(r) } as object)
          },
          { maxRetries: 0, timeoutInSeconds: settings.timeoutSeconds ?? 20 }
        ),
      catch: convert
    }).pipe(
      Effect.flatMap((created) => {
        const id = (created as { id?: unknown }).id
        return typeof id === "string"
          ? Effect.succeed<SendResult>({ _tag: "Pending", providerRef: id, detail: `call ${id} queued` })
          : Effect.fail(ChannelError.make("voice", "Unknown", "unknown", "vapi answered without a call id"))
      }),
      Effect.withSpan("VapiVoice.send")
    ),
  reconcile: (attempt: Attempt) =>
    Effect.tryPromise({
      try: () =>
        client.calls.list(
          { createdAtGe: new Date(attempt.createdAt.getTime() - 60_000).toISOString(), limit: 100 },
          { maxRetries: 0, timeoutInSeconds: settings.timeoutSeconds ?? 20 }
        ),
      catch: convert
    }).pipe(
      Effect.map((calls) => {
        const found = calls.find((c) => keyOf(c) === attempt.idempotencyKey)
        return found === undefined
          ? Option.none<SendResult>()
          : Option.some<SendResult>({ _tag: "Pending", providerRef: found.id, detail: `call ${found.id} found by reconciliation` })
      }),
      Effect.withSpan("VapiVoice.reconcile")
    )
})

/** The adapter with a new SDK client (SDK retries off). */
export const make = (settings: VapiSettings): ChannelAdapter =>
  fromClient(
    new VapiClient({
      token: Redacted.value(settings.apiKey),
      ...(settings.baseUrl ? { baseUrl: settings.baseUrl } : {}),
      maxRetries: 0,
      timeoutInSeconds: settings.timeoutSeconds ?? 20
    }),
    settings
  )
