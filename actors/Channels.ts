/**
 * Delivery channels (voice, email, SMS) behind one service. Every delivery carries an
 * idempotency key; it is recorded before anything is sent, so a re-run after a crash
 * returns the recorded outcome instead of calling, mailing or texting twice. A delivery
 * is delivered now, pending (a call whose outcome comes by webhook), or deferred (a
 * throttle or capacity limit said not now).
 *
 * `channels/LiveChannels.ts` is the layer over the real providers (Vapi, SMTP, Twilio-shaped
 * SMS) with the attempt ledger, throttles and reconciliation.
 *
 * `layerSandbox` is the default for tests and the demo: it sends nothing and records each
 * delivery in the sandbox ledger (Postgres), with a deterministic outcome derived from the
 * contact and channel (answer, voicemail and bounce rates of a typical outbound campaign).
 */
import { Context, Effect, Layer } from "effect"
import type { Campaign, Ids } from "../protocols/index.js"
import { hash32 } from "../protocols/Subjects.js"
import * as Trace from "../protocols/Trace.js"
import { DeliveryLedger } from "../storage/DeliveryLedger.js"
import type { StorageError } from "../storage/Errors.js"
import type { ChannelError } from "./channels/ChannelError.js"

/** One delivery to make. */
export interface DeliveryRequest {
  readonly tenant: Ids.TenantId
  readonly campaignId: Ids.CampaignId
  readonly contactId: Ids.ContactId
  readonly channel: Campaign.Channel
  readonly to: string
  readonly subject: string | null
  readonly body: string
  readonly idempotencyKey: string
  /** Used by the sandbox to shape a realistic conversation. */
  readonly leadScore: number
}

/** What a delivery produced. */
export type DeliveryResult =
  /** The channel knows the outcome now (email accepted, SMS queued, sandbox call). */
  | {
      readonly _tag: "Delivered"
      readonly outcome: Campaign.DeliveryOutcome
      readonly detail: string
      readonly durationSec: number
      readonly transcript: string | null
      /** True when this key was delivered before: nothing was sent this time. */
      readonly duplicate: boolean
    }
  /** Handed to the provider; the outcome arrives later (Vapi: the end-of-call report). */
  | { readonly _tag: "Pending"; readonly providerRef: string; readonly detail: string; readonly duplicate: boolean }
  /** Held back by a throttle or a capacity limit: nothing sent; try again at `retryAt`. */
  | { readonly _tag: "Deferred"; readonly reason: string; readonly retryAt: number }

/** The channel service. */
export class Channels extends Context.Tag("nexus/Channels")<
  Channels,
  { readonly deliver: (request: DeliveryRequest) => Effect.Effect<DeliveryResult, StorageError | ChannelError> }
>() {}

/** The sandbox's outcome for a request: deterministic in contact and channel. */
export const sandboxOutcome = (
  r: DeliveryRequest
): { outcome: Campaign.DeliveryOutcome; detail: string; durationSec: number; transcript: string | null } => {
  const roll = hash32(`${r.contactId}/${r.channel}`) % 100
  switch (r.channel) {
    case "voice": {
      if (roll < 45) {
        const transcript =
          r.leadScore >= 75
            ? "Contact: Yes, we have been looking at this. What does the pricing look like? Could we set up a demo next week?"
            : r.leadScore >= 40
              ? "Contact: Interesting, but the timeline is unclear on our side. Send me something by email."
              : "Contact: Sorry, we are not interested right now."
        return { outcome: "answered", detail: "call answered", durationSec: 60 + (roll % 30) * 8, transcript }
      }
      if (roll < 75) return { outcome: "voicemail", detail: "voicemail left", durationSec: 22, transcript: null }
      return { outcome: "no-answer", detail: "no answer after 6 rings", durationSec: 0, transcript: null }
    }
    case "email":
      return roll < 95
        ? { outcome: "sent", detail: "accepted by sandbox mail server", durationSec: 0, transcript: null }
        : { outcome: "bounced", detail: "550 mailbox unavailable (sandbox)", durationSec: 0, transcript: null }
    case "sms":
      return roll < 97
        ? { outcome: "sent", detail: "delivered to handset (sandbox)", durationSec: 0, transcript: null }
        : { outcome: "failed", detail: "number unreachable (sandbox)", durationSec: 0, transcript: null }
  }
}

/** Sandbox channels: record in the ledger, send nothing. */
export const layerSandbox: Layer.Layer<Channels, never, DeliveryLedger> = Layer.effect(
  Channels,
  Effect.gen(function* () {
    const ledger = yield* DeliveryLedger
    return {
      deliver: Effect.fnUntraced(function* (r: DeliveryRequest) {
        const result = sandboxOutcome(r)
        const { entry, duplicate } = yield* ledger.record({
          tenantId: r.tenant,
          idempotencyKey: r.idempotencyKey,
          campaignId: r.campaignId,
          contactId: r.contactId,
          channel: r.channel,
          recipient: r.to,
          subject: r.subject,
          body: r.body,
          outcome: result.outcome,
          detail: result.detail,
          durationSec: result.durationSec,
          transcript: result.transcript
        })
        return {
          _tag: "Delivered",
          outcome: entry.outcome,
          detail: entry.detail,
          durationSec: entry.durationSec,
          transcript: entry.transcript,
          duplicate
        } satisfies DeliveryResult
      }, Trace.span("Channels.sandbox.deliver", { captureStackTrace: false }))
    }
  })
)
