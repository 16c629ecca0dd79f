/**
 * Which plans and actions need a person's approval before they run: large call volumes,
 * multi-channel blasts, and the planner's destructive actions. Thresholds are data
 * (`defaults`); `assess` is pure, so the campaign actor and the planner agree on it.
 */
import type { ApprovalNeed, Channel } from "../../protocols/Campaign.js"

/** Approval thresholds. */
export interface RiskPolicy {
  /** AI voice calls a plan may place without approval. Default 100. */
  readonly maxCallsWithoutApproval: number
  /** Messages (contacts × touches) a plan over two or more channels may send without approval. Default 500. */
  readonly maxBlastWithoutApproval: number
}

/** Default thresholds. */
export const defaults: RiskPolicy = { maxCallsWithoutApproval: 100, maxBlastWithoutApproval: 500 }

/** What a plan would do, as far as risk goes. */
export interface PlanVolume {
  readonly campaignId: string
  readonly contacts: number
  readonly channels: ReadonlyArray<Channel>
  readonly maxTouches: number
}

/** The approvals a plan's volume needs (none for an ordinary plan). Ids are deterministic. */
export const assess = (v: PlanVolume, policy: RiskPolicy = defaults): Array<ApprovalNeed> => {
  const out: Array<ApprovalNeed> = []
  const touches = Math.min(v.maxTouches, v.channels.length)
  const voiceTouched = v.channels.slice(0, touches).includes("voice")
  if (voiceTouched && v.contacts > policy.maxCallsWithoutApproval) {
    out.push({
      approvalId: `${v.campaignId}-calls`,
      action: "voice_call",
      reason: `large call volume: up to ${v.contacts} AI voice calls (over ${policy.maxCallsWithoutApproval} need approval)`,
      details: { calls: v.contacts, threshold: policy.maxCallsWithoutApproval }
    })
  }
  const messages = v.contacts * touches
  if (touches >= 2 && messages > policy.maxBlastWithoutApproval) {
    out.push({
      approvalId: `${v.campaignId}-blast`,
      action: "multi_channel_blast",
      reason: `multi-channel blast: up to ${messages} messages over ${v.channels.slice(0, touches).join(", ")} (over ${policy.maxBlastWithoutApproval} need approval)`,
      details: { messages, channels: v.channels.slice(0, touches), threshold: policy.maxBlastWithoutApproval }
    })
  }
  return out
}
