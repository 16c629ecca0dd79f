/**
 * The campaign-level rate watch: from a campaign's outcome counters it computes the
 * no-answer, voicemail, opt-out, reply and failure rates and proposes adjustments with
 * their reason: switch channel (voice mostly unanswered, or email unanswered while voice
 * is enabled), slow down (opt-outs or failures rising), pause (opt-outs high). Pure; the
 * analyzer agent runs it, the campaign actor applies or escalates what it proposes.
 */
import type { Channel } from "../../protocols/Campaign.js"
import type { Adjustment, OutcomeStats } from "../../protocols/Dispatch.js"

/** Thresholds of the watch. */
export interface HealthPolicy {
  /** Completed contacts before any rate is trusted. Default 20. */
  readonly minSample: number
  /** Voice attempts ending in voicemail or no answer above which voice moves last. Default 0.6. */
  readonly maxUnansweredVoice: number
  /** Opt-out rate that slows the campaign down. Default 0.02. */
  readonly slowDownOptOut: number
  /** Opt-out rate that pauses it. Default 0.05. */
  readonly pauseOptOut: number
  /** Failed or bounced deliveries above which the campaign slows down. Default 0.2. */
  readonly maxFailure: number
  /** Emails without any reply after this many: switch to voice first when enabled. Default 50. */
  readonly emailsWithoutReply: number
}

/** Default thresholds. */
export const defaults: HealthPolicy = {
  minSample: 20,
  maxUnansweredVoice: 0.6,
  slowDownOptOut: 0.02,
  pauseOptOut: 0.05,
  maxFailure: 0.2,
  emailsWithoutReply: 50
}

/** The rates of a campaign. */
export interface Rates {
  readonly noAnswer: number
  readonly voicemail: number
  readonly optOut: number
  readonly reply: number
  readonly failure: number
}

const ratio = (n: number, d: number) => (d === 0 ? 0 : n / d)
const pct = (x: number) => `${Math.round(x * 100)}%`

/** The rates of a campaign's counters. */
export const rates = (s: OutcomeStats): Rates => {
  const by = (k: string) => s.byOutcome[k] ?? 0
  return {
    noAnswer: ratio(by("no-answer"), s.completed),
    voicemail: ratio(by("voicemail"), s.completed),
    optOut: ratio(s.optOuts, s.completed),
    reply: ratio(s.replies, s.completed),
    failure: ratio(by("failed") + by("bounced"), s.completed)
  }
}

/** The adjustments the counters call for (none when all is well or the sample is small). */
export const review = (
  s: OutcomeStats,
  sequence: ReadonlyArray<Channel>,
  window: number,
  policy: HealthPolicy = defaults
): Array<Adjustment> => {
  if (s.completed < policy.minSample) return []
  const r = rates(s)
  const out: Array<Adjustment> = []
  if (r.optOut >= policy.pauseOptOut) {
    out.push({ kind: "pause", reason: `opt-out rate ${pct(r.optOut)} is at or above ${pct(policy.pauseOptOut)}` })
    return out
  }
  const slower = Math.max(1, Math.floor(window / 2))
  if (r.optOut >= policy.slowDownOptOut) {
    out.push({ kind: "slow-down", reason: `opt-out rate ${pct(r.optOut)} is at or above ${pct(policy.slowDownOptOut)}`, window: slower })
  } else if (r.failure >= policy.maxFailure) {
    out.push({ kind: "slow-down", reason: `failure rate ${pct(r.failure)} is at or above ${pct(policy.maxFailure)}`, window: slower })
  }
  // voicemail and no-answer are outcomes of calls only
  const voice = s.perChannel["voice"]
  const unanswered = ratio((s.byOutcome["voicemail"] ?? 0) + (s.byOutcome["no-answer"] ?? 0), voice?.attempted ?? 0)
  if (sequence[0] === "voice" && sequence.length > 1 && (voice?.attempted ?? 0) >= policy.minSample && unanswered >= policy.maxUnansweredVoice) {
    const channels = [...sequence.slice(1), "voice"] as unknown as [Channel, ...Array<Channel>]
    out.push({
      kind: "switch-channel",
      reason: `${pct(unanswered)} of calls went to voicemail or were not answered; lead with ${channels[0]}`,
      channels
    })
  }
  const email = s.perChannel["email"]
  if (sequence[0] === "email" && sequence.includes("voice") && (email?.attempted ?? 0) >= policy.emailsWithoutReply && s.replies === 0) {
    const channels = ["voice", ...sequence.filter((c) => c !== "voice")] as [Channel, ...Array<Channel>]
    out.push({ kind: "switch-channel", reason: `no reply after ${email!.attempted} emails; lead with voice`, channels })
  }
  return out
}
