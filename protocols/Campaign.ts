/**
 * Messages of the campaign flow (ARCHITECTURE.md §4): commands, agent requests and
 * replies, and the progress events the gateway streams to dashboards.
 */
import { Schema } from "effect"
import { Cost } from "./Cost.js"
import { CampaignId, ContactId } from "./Ids.js"
import * as Message from "./Message.js"

/** A delivery channel. */
export const Channel = Schema.Literal("voice", "email", "sms")
export type Channel = typeof Channel.Type

/** Company size segment. */
export const Segment = Schema.Literal("enterprise", "mid-market", "smb")
export type Segment = typeof Segment.Type

/** Which contacts a campaign may target. Every field narrows; absent fields do not. */
export const AudienceFilter = Schema.Struct({
  segments: Schema.optional(Schema.Array(Segment)),
  industries: Schema.optional(Schema.Array(Schema.String)),
  regions: Schema.optional(Schema.Array(Schema.String)),
  titleKeywords: Schema.optional(Schema.Array(Schema.String)),
  minLeadScore: Schema.optional(Schema.Number.pipe(Schema.between(0, 100)))
})
export type AudienceFilter = typeof AudienceFilter.Type

/** Action and money limits of a campaign. */
export const Budget = Schema.Struct({
  maxActions: Schema.Int.pipe(Schema.positive()),
  maxCostUsd: Schema.Number.pipe(Schema.nonNegative())
})
export type Budget = typeof Budget.Type

/** Actions and money: a contact's allowance (reserved by its campaign) or what it spent. */
export const Spend = Schema.Struct({
  actions: Schema.Int.pipe(Schema.nonNegative()),
  usd: Schema.Number.pipe(Schema.nonNegative())
})
export type Spend = typeof Spend.Type

/**
 * What happens when a contact is already being worked (by another campaign, or another
 * holder of its lock): `skip` it with the reason; `wait` for it (durably, up to
 * `maxWaitMs`, then skip); or `preempt` an engagement of lower priority that has not yet
 * delivered anything (one mid-delivery is waited for instead).
 */
export const LockPolicy = Schema.Struct({
  onConflict: Schema.Literal("skip", "wait", "preempt"),
  /** Higher wins a preemption. Default 0. */
  priority: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  /** Longest wait for a busy contact before it is skipped. Default 1 hour. */
  maxWaitMs: Schema.optionalWith(Schema.Number.pipe(Schema.nonNegative()), { default: () => 3_600_000 })
})
export type LockPolicy = typeof LockPolicy.Type

/** The default lock policy: skip a busy contact. */
export const defaultLockPolicy: LockPolicy = { onConflict: "skip", priority: 0, maxWaitMs: 3_600_000 }

/** What a contact actor needs to know about its contact (sent with the engage message). */
export const ContactSnapshot = Schema.Struct({
  id: ContactId,
  name: Schema.String,
  email: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  company: Schema.String,
  title: Schema.String,
  industry: Schema.String,
  segment: Segment,
  region: Schema.String,
  timezone: Schema.String,
  leadScore: Schema.Number,
  optedOut: Schema.Boolean,
  consent: Schema.Struct({ voice: Schema.Boolean, email: Schema.Boolean, sms: Schema.Boolean })
})
export type ContactSnapshot = typeof ContactSnapshot.Type

/** Guidance for the content agent. */
export const Brief = Schema.Struct({
  goal: Schema.String,
  tone: Schema.String,
  valueProposition: Schema.String,
  callToAction: Schema.String
})
export type Brief = typeof Brief.Type

/** One ReAct step of the planner. */
export const ReasoningStep = Schema.Struct({
  thought: Schema.String,
  action: Schema.String,
  observation: Schema.String
})
export type ReasoningStep = typeof ReasoningStep.Type

/** How many touches a contact gets (one per channel of the sequence) and the gap between them. */
export const Sequence = Schema.Struct({
  maxTouches: Schema.Int.pipe(Schema.between(1, 5)),
  gapMs: Schema.Number.pipe(Schema.nonNegative())
})
export type Sequence = typeof Sequence.Type

/** An action of a plan that waits for a person's confirmation before it runs. */
export const ApprovalNeed = Schema.Struct({
  approvalId: Schema.String,
  action: Schema.String,
  reason: Schema.String,
  details: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type ApprovalNeed = typeof ApprovalNeed.Type

/** The planner's output. */
export const Plan = Schema.Struct({
  audience: AudienceFilter,
  limit: Schema.Int.pipe(Schema.nonNegative()),
  channelSequence: Schema.NonEmptyArray(Channel),
  brief: Brief,
  reasoning: Schema.Array(ReasoningStep),
  model: Schema.String,
  /** How many contacts matched the audience when the plan was made. */
  matching: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** Touches per contact (default: one). */
  sequence: Schema.optional(Sequence),
  /** Actions that wait for approval (high-risk volume, destructive actions). */
  approvals: Schema.optional(Schema.Array(ApprovalNeed))
})
export type Plan = typeof Plan.Type

/** Terminal outcome of one contact in one campaign. */
export const ContactStatus = Schema.Literal("reached", "converted", "skipped", "failed")
export type ContactStatus = typeof ContactStatus.Type

/** Raw outcome reported by a channel. */
export const DeliveryOutcome = Schema.Literal("answered", "voicemail", "no-answer", "sent", "bounced", "failed")
export type DeliveryOutcome = typeof DeliveryOutcome.Type

/** Counters of a campaign, carried by progress events and the summary. */
export const CampaignCounts = Schema.Struct({
  targeted: Schema.Int,
  dispatched: Schema.Int,
  inProgress: Schema.Int,
  completed: Schema.Int,
  reached: Schema.Int,
  /**
   * Contacts that answered (a reply or a booked meeting), during their sequence or after it
   * ended; it can still grow after the campaign completed. 0 when absent (older writers).
   */
  replied: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  converted: Schema.Int,
  skipped: Schema.Int,
  failed: Schema.Int
})
export type CampaignCounts = typeof CampaignCounts.Type

/** The final report of a campaign. */
export const CampaignSummary = Schema.Struct({
  counts: CampaignCounts,
  skippedReasons: Schema.Record({ key: Schema.String, value: Schema.Int }),
  perChannel: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ attempted: Schema.Int, reached: Schema.Int })
  }),
  actionsUsed: Schema.Int,
  /** Money spent: model calls, messages and call minutes. */
  costUsd: Schema.optional(Schema.Number),
  startedAt: Schema.Number,
  completedAt: Schema.Number,
  durationMs: Schema.Number
})
export type CampaignSummary = typeof CampaignSummary.Type

// ---------------------------------------------------------------------------------------
// Commands and actor/agent messages

/** Command: start a campaign (from the gateway or an external system). */
export const StartCampaign = Message.define(
  "campaign.start",
  Schema.Struct({
    campaignId: CampaignId,
    name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
    goal: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2000)),
    audience: AudienceFilter,
    channels: Schema.NonEmptyArray(Channel),
    targetCount: Schema.Int.pipe(Schema.positive()),
    budget: Budget,
    /** What to do with contacts another campaign is working (default: skip them). */
    lockPolicy: Schema.optional(LockPolicy)
  }),
  { description: "Start a campaign: goal, audience filter, channels, how many contacts, budget, contact-lock policy." }
)
/** Payload of `StartCampaign`. */
export type StartPayload = typeof StartCampaign.payload.Type

/** Campaign → planner: make a plan. */
export const PlanRequested = Message.define(
  "planner.plan-requested",
  Schema.Struct({
    campaignId: CampaignId,
    goal: Schema.String,
    audience: AudienceFilter,
    channels: Schema.NonEmptyArray(Channel),
    targetCount: Schema.Int,
    /** Most the planner's model calls may cost (reserved from the campaign budget). */
    maxCostUsd: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
  }),
  { description: "Ask the planner agent for a campaign plan." }
)

/** Planner → campaign: the plan. */
export const PlanReady = Message.define(
  "campaign.plan-ready",
  Schema.Struct({ campaignId: CampaignId, plan: Plan, cost: Schema.optional(Cost) }),
  { description: "The planner's plan for a campaign, with what its model calls cost." }
)

/** Campaign → contact: work this contact. */
export const EngageContact = Message.define(
  "contact.engage",
  Schema.Struct({
    campaignId: CampaignId,
    contact: ContactSnapshot,
    channels: Schema.NonEmptyArray(Channel),
    brief: Brief,
    /** Touches and their spacing (default: one touch). */
    sequence: Schema.optional(Sequence),
    /** The campaign's contact-lock policy (default: skip a busy contact). */
    lockPolicy: Schema.optional(LockPolicy),
    /** What the campaign reserved for this contact from its budget (absent: no limit). */
    allowance: Schema.optional(Spend)
  }),
  { description: "Ask a contact actor to work its contact for a campaign." }
)

/** Contact → content agent: write a message. */
export const DraftRequested = Message.define(
  "content.draft-requested",
  Schema.Struct({
    campaignId: CampaignId,
    contact: ContactSnapshot,
    channel: Channel,
    brief: Brief,
    /** Most this draft's model calls may cost (from the contact's allowance; absent: no limit). */
    maxCostUsd: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
  }),
  { description: "Ask the content agent for a personalised message." }
)

/** Content agent → contact: the message. */
export const Drafted = Message.define(
  "contact.drafted",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    subject: Schema.NullOr(Schema.String),
    body: Schema.String,
    model: Schema.String,
    /** What the output filter did: passed, rewrote or blocked the draft, and why. */
    filter: Schema.optional(
      Schema.Struct({ verdict: Schema.Literal("pass", "rewritten", "blocked"), reasons: Schema.Array(Schema.String) })
    ),
    cost: Schema.optional(Cost)
  }),
  { description: "A drafted message for one contact and channel." }
)

/** Contact → executor agent: deliver a message (idempotent by key). */
export const DeliverRequested = Message.define(
  "executor.deliver-requested",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    to: Schema.String,
    subject: Schema.NullOr(Schema.String),
    body: Schema.String,
    idempotencyKey: Schema.String,
    leadScore: Schema.Number,
    /**
     * Pass an outcome known at once straight to the analyzer, on the sender's behalf: the
     * sender then hears `Analysed` (with the delivery) instead of `Delivered`, one hop
     * sooner. `allowanceLeftUsd`: what the contact may still spend before this delivery
     * is charged (null: no limit); the analysis may use what the delivery leaves of it.
     */
    analyse: Schema.optional(Schema.Struct({ allowanceLeftUsd: Schema.NullOr(Schema.Number) }))
  }),
  { description: "Ask the executor to deliver a message over a channel, at most once per idempotency key." }
)

/** A delivery's outcome, carried through the analyzer when the executor passes it on. */
export const DeliveryFacts = Schema.Struct({
  idempotencyKey: Schema.String,
  outcome: DeliveryOutcome,
  detail: Schema.String,
  durationSec: Schema.Number,
  transcript: Schema.NullOr(Schema.String)
})
export type DeliveryFacts = typeof DeliveryFacts.Type

/** Executor → contact: what happened. */
export const Delivered = Message.define(
  "contact.delivered",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    idempotencyKey: Schema.String,
    outcome: DeliveryOutcome,
    detail: Schema.String,
    durationSec: Schema.Number,
    transcript: Schema.NullOr(Schema.String)
  }),
  { description: "The outcome of one delivery." }
)

/** Contact (or the executor, on its behalf) → analyzer agent: analyse an outcome. */
export const AnalyseRequested = Message.define(
  "analyzer.analyse-requested",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    channel: Channel,
    outcome: DeliveryOutcome,
    transcript: Schema.NullOr(Schema.String),
    leadScore: Schema.Number,
    /** Most this analysis's model calls may cost (from the contact's allowance; absent: no limit). */
    maxCostUsd: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
    /** The delivery, when the executor passed its outcome on: handed back in `Analysed`. */
    delivery: Schema.optional(DeliveryFacts)
  }),
  { description: "Ask the analyzer agent to analyse a delivery outcome." }
)

/** Analyzer → contact: the analysis. */
export const Analysed = Message.define(
  "contact.analysed",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    sentiment: Schema.Literal("positive", "neutral", "negative"),
    buyingSignals: Schema.Array(Schema.String),
    nextBestAction: Schema.String,
    leadStatus: Schema.Literal("qualified", "nurture", "converted", "unqualified"),
    model: Schema.String,
    objections: Schema.optional(Schema.Array(Schema.String)),
    cost: Schema.optional(Cost),
    /** The delivery analysed, when the executor passed it on (the contact has not heard of it yet). */
    delivery: Schema.optional(DeliveryFacts)
  }),
  { description: "The analyzer's reading of an outcome." }
)

/** Contact → campaign: this contact is done. */
export const ContactCompleted = Message.define(
  "campaign.contact-completed",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    status: ContactStatus,
    reason: Schema.NullOr(Schema.String),
    channel: Schema.NullOr(Channel),
    /** The last delivery's raw outcome, for the campaign's rate watch. */
    outcome: Schema.optional(Schema.NullOr(DeliveryOutcome)),
    /** Touches made. */
    touches: Schema.optional(Schema.Int),
    /** What it spent (the campaign settles it against the allowance it reserved). */
    spent: Schema.optional(Spend),
    /** When the campaign engaged the contact (its engage command's time): the campaign paces itself by the time contacts spend in flight. */
    dispatchedAt: Schema.optional(Schema.Number)
  }),
  { description: "A contact reached a terminal state in a campaign." }
)

// ---------------------------------------------------------------------------------------
// Progress events (topic `campaign:<id>`), streamed to dashboards

/** Event: the campaign was accepted. */
export const CampaignStarted = Message.define(
  "event.campaign-started",
  Schema.Struct({
    campaignId: CampaignId,
    name: Schema.String,
    goal: Schema.String,
    targetCount: Schema.Int,
    /** The campaign's limits (absent in events of older writers). */
    budget: Schema.optional(Budget)
  }),
  { description: "A campaign was accepted and is being planned." }
)

/** Event: the plan is ready. */
export const CampaignPlanned = Message.define(
  "event.campaign-planned",
  Schema.Struct({ campaignId: CampaignId, plan: Plan }),
  { description: "The planner's plan, with its reasoning trace." }
)

/** Event: one contact moved a step. */
export const ContactProgress = Message.define(
  "event.contact-progress",
  Schema.Struct({
    campaignId: CampaignId,
    contactId: ContactId,
    /** `waiting`: the contact is busy (another campaign, another lock holder); `reason` says with what. */
    phase: Schema.Literal("waiting", "engaged", "drafted", "delivered", "analysed", "completed"),
    channel: Schema.NullOr(Channel),
    status: Schema.NullOr(ContactStatus),
    reason: Schema.NullOr(Schema.String)
  }),
  { description: "A contact moved one step through the campaign." }
)

/** Event: campaign counters. */
export const CampaignProgress = Message.define(
  "event.campaign-progress",
  Schema.Struct({ campaignId: CampaignId, counts: CampaignCounts }),
  { description: "The campaign's counters after a batch of contacts completed." }
)

/** Event: the campaign is finished. */
export const CampaignCompleted = Message.define(
  "event.campaign-completed",
  Schema.Struct({ campaignId: CampaignId, summary: CampaignSummary }),
  { description: "Every targeted contact is terminal; the summary." }
)

/** Event: the campaign was refused (invalid, duplicate id with other content…). */
export const CampaignRejected = Message.define(
  "event.campaign-rejected",
  Schema.Struct({ campaignId: CampaignId, reason: Schema.String }),
  { description: "A start command was refused, with the reason." }
)

/** Every message of the campaign flow. */
export const all: ReadonlyArray<Message.MessageType> = [
  StartCampaign,
  PlanRequested,
  PlanReady,
  EngageContact,
  DraftRequested,
  Drafted,
  DeliverRequested,
  Delivered,
  AnalyseRequested,
  Analysed,
  ContactCompleted,
  CampaignStarted,
  CampaignPlanned,
  ContactProgress,
  CampaignProgress,
  CampaignCompleted,
  CampaignRejected
]
