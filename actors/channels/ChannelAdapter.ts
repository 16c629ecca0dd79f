/**
 * The port of one real channel provider: send a delivery and say what happened (now, or
 * pending until a webhook), name the sending account the limits count against, and
 * optionally find an earlier attempt at the provider (reconcile) when a crash left it
 * unfinished. `LiveChannels` puts the attempt ledger, throttles and limits around it.
 */
import type { Effect, Option } from "effect"
import type { Campaign } from "../../protocols/index.js"
import type { Attempt } from "../../storage/AttemptLedger.js"
import type { DeliveryRequest } from "../Channels.js"
import type { ChannelError } from "./ChannelError.js"

/** What a provider said. */
export type SendResult =
  | {
      readonly _tag: "Done"
      readonly outcome: Campaign.DeliveryOutcome
      readonly detail: string
      readonly providerRef: string | null
      readonly durationSec: number
      readonly transcript: string | null
    }
  | { readonly _tag: "Pending"; readonly providerRef: string; readonly detail: string }

/** Limits of a channel. Null: none. */
export interface ChannelLimits {
  /** Sends per sending account per day (UTC). */
  readonly maxPerDay: number | null
  /** Unfinished attempts per account at once (Vapi: 10 concurrent calls by default). */
  readonly maxActive: number | null
}

/** One provider. */
export interface ChannelAdapter {
  readonly channel: Campaign.Channel
  readonly limits: ChannelLimits
  /** The sending identity of a request (mailbox, number, provider account). */
  readonly account: (request: DeliveryRequest) => string
  readonly send: (request: DeliveryRequest) => Effect.Effect<SendResult, ChannelError>
  /** Finds an unfinished earlier attempt at the provider, if the provider can tell. */
  readonly reconcile?: (attempt: Attempt) => Effect.Effect<Option.Option<SendResult>, ChannelError>
}
