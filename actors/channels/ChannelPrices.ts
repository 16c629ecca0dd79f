/**
 * The dated price table of delivery channels, in US dollars, as the providers list them
 * (list prices, United States): data, not logic. A campaign reserves a touch's worst case
 * (`reserveUsd`) from its budget and settles what the touch cost (`costUsd`): one message,
 * or a call's minutes.
 */
import type { Campaign } from "../../protocols/index.js"

/** Prices of one channel. */
export interface ChannelPrice {
  /** Per message sent (email, SMS segment). */
  readonly perMessage: number
  /** Per started minute of a call (voice platform plus telephony). */
  readonly perMinute: number
  /** The longest call a reservation covers, in minutes (calls are capped to it). */
  readonly maxMinutes: number
  /** The day this row was checked against the provider's price list. */
  readonly asOf: string
}

/** The table. */
export const prices: Readonly<Record<Campaign.Channel, ChannelPrice>> = {
  email: { perMessage: 0.001, perMinute: 0, maxMinutes: 0, asOf: "2025-11-01" },
  sms: { perMessage: 0.0083, perMinute: 0, maxMinutes: 0, asOf: "2025-11-01" },
  voice: { perMessage: 0, perMinute: 0.13, maxMinutes: 10, asOf: "2025-11-01" }
}

/** The most one touch on `channel` can cost. */
export const reserveUsd = (channel: Campaign.Channel): number => {
  const p = prices[channel]
  return p.perMessage + p.perMinute * p.maxMinutes
}

/** What one touch cost: the message, or the call's started minutes (capped as reserved). */
export const costUsd = (channel: Campaign.Channel, durationSec: number): number => {
  const p = prices[channel]
  const minutes = Math.min(p.maxMinutes, Math.ceil(Math.max(0, durationSec) / 60))
  return p.perMessage + p.perMinute * minutes
}

/** Model calls one touch may cost at most (a draft and an analysis), reserved with the touch. */
export const LLM_PER_TOUCH_USD = 0.02
