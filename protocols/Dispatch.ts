/**
 * Dispatch-time messages of a contact's engagement beyond the happy path: deferral (quiet
 * hours, throttles, voice capacity) and the wake-up that follows, calls whose outcome comes
 * later by webhook, inbound signals that stop a sequence (reply, meeting booked, opt-out)
 * or, once it ended, still count as answers, and the campaign-level review by the analyzer
 * with the adjustments it proposes.
 */
import { Schema } from "effect"
import { Channel, DeliveryOutcome } from "./Campaign.js"
import { Cost } from "./Cost.js"
import { CampaignId, ContactId } from "./Ids.js"
import * as Message from "./Message.js"

/** Contact → scheduler agent: wake me at `wakeAt` (epoch ms). */
export const DeferRequested = Message.define(
  "scheduler.defer-requested",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    wakeAt: Schema.Number,
    reason: Schema.String,
    /** Matches the wake-up to the deferral it answers (stale wake-ups are ignored). */
    token: Schema.String
  }),
  { description: "Ask the scheduler to wake a contact actor at a time (quiet hours, throttles, next touch)." }
)

/** Scheduler → contact: the time has come. */
export const StepDue = Message.define(
  "contact.step-due",
  Schema.Struct({ campaignId: CampaignId, contactId: ContactId, reason: Schema.String, token: Schema.String }),
  { description: "A deferred step of a contact is due." }
)

/** Executor → contact: not delivered now (throttle, capacity); try again at `retryAt`. */
export const DeliveryDeferred = Message.define(
  "contact.delivery-deferred",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    idempotencyKey: Schema.String,
    reason: Schema.String,
    retryAt: Schema.Number
  }),
  { description: "A delivery was held back by a throttle or a capacity limit; retry later." }
)

/** Executor → contact: the call is placed; its outcome arrives by webhook. */
export const DeliveryPending = Message.define(
  "contact.delivery-pending",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    idempotencyKey: Schema.String,
    providerRef: Schema.String,
    detail: Schema.String
  }),
  { description: "A delivery was handed to the provider; its outcome arrives later (e.g. the end-of-call report)." }
)

/** What an inbound signal says. */
export const InboundKind = Schema.Literal("reply", "meeting-booked", "opt-out")
export type InboundKind = typeof InboundKind.Type

/** Command (from a channel's webhook, the CRM or a person): the contact answered. */
export const ContactInbound = Message.define(
  "contact.inbound",
  Schema.Struct({
    contactId: ContactId,
    campaignId: Schema.NullOr(CampaignId),
    kind: InboundKind,
    channel: Schema.NullOr(Channel),
    text: Schema.NullOr(Schema.String.pipe(Schema.maxLength(4000))),
    at: Schema.Number
  }),
  { description: "A contact replied, booked a meeting or opted out: stops its sequence." }
)

/**
 * Contact → campaign: the contact answered (a reply, a booked meeting) after its engagement
 * in the campaign had ended; counted once per contact and campaign as `replied`.
 */
export const ContactReplied = Message.define(
  "campaign.contact-replied",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    kind: Schema.Literal("reply", "meeting-booked"),
    at: Schema.Number
  }),
  { description: "A contact answered after its engagement in the campaign had ended." }
)

/** Event: a contact's step waits (quiet hours, throttle, capacity, next touch). */
export const ContactDeferred = Message.define(
  "event.contact-deferred",
  Schema.Struct({ campaignId: CampaignId, contactId: ContactId, until: Schema.Number, reason: Schema.String }),
  { description: "A contact's next step was deferred, until when and why." }
)

/** Outcome counters of a campaign, the input of its rate watch. */
export const OutcomeStats = Schema.Struct({
  completed: Schema.Int,
  byOutcome: Schema.Record({ key: Schema.String, value: Schema.Int }),
  optOuts: Schema.Int,
  replies: Schema.Int,
  perChannel: Schema.Record({ key: Schema.String, value: Schema.Struct({ attempted: Schema.Int, reached: Schema.Int }) })
})
export type OutcomeStats = typeof OutcomeStats.Type

/** An adjustment to a live campaign. */
export const Adjustment = Schema.Struct({
  kind: Schema.Literal("switch-channel", "slow-down", "pause"),
  reason: Schema.String,
  /** New channel order (switch-channel). */
  channels: Schema.optional(Schema.NonEmptyArray(Channel)),
  /** New in-flight window (slow-down). */
  window: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type Adjustment = typeof Adjustment.Type

/** Campaign → analyzer: review the campaign's rates. */
export const CampaignReviewRequested = Message.define(
  "analyzer.campaign-review-requested",
  Schema.Struct({
    campaignId: CampaignId,
    stats: OutcomeStats,
    channelSequence: Schema.NonEmptyArray(Channel),
    window: Schema.Int
  }),
  { description: "Ask the analyzer to watch a campaign's rates and propose adjustments." }
)

/** Analyzer → campaign: proposed adjustments (possibly none). */
export const AdjustmentProposed = Message.define(
  "campaign.adjustment-proposed",
  Schema.Struct({
    campaignId: CampaignId,
    basedOn: Schema.Int,
    adjustments: Schema.Array(Adjustment),
    cost: Schema.optional(Cost)
  }),
  { description: "Adjustments the analyzer proposes from a campaign's rates." }
)

/** Event: an adjustment was applied, or escalated for approval, and why. */
export const CampaignAdjusted = Message.define(
  "event.campaign-adjusted",
  Schema.Struct({
    campaignId: CampaignId,
    adjustment: Adjustment,
    decision: Schema.Literal("applied", "escalated"),
    approvalId: Schema.NullOr(Schema.String)
  }),
  { description: "The campaign applied an adjustment or escalated it for approval." }
)

/** The last raw outcome and the touch count of a finished contact (for the rate watch). */
export const OutcomeNote = Schema.Struct({ outcome: Schema.NullOr(DeliveryOutcome), touches: Schema.Int })

/** Every dispatch message. */
export const all: ReadonlyArray<Message.MessageType> = [
  DeferRequested,
  StepDue,
  DeliveryDeferred,
  DeliveryPending,
  ContactInbound,
  ContactReplied,
  ContactDeferred,
  CampaignReviewRequested,
  AdjustmentProposed,
  CampaignAdjusted
]
