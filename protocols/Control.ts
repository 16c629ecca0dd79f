/**
 * Steering a live campaign: pause, resume, cancel, edit, and the approval of high-risk
 * actions; with the events that report each change. Commands arrive on
 * `<p>.<tenant>.cmd.<type>` (from the gateway's HTTP API or any NATS client) and are
 * routed to the campaign actor.
 */
import { Schema } from "effect"
import { Budget, Channel } from "./Campaign.js"
import { CampaignId } from "./Ids.js"
import * as Message from "./Message.js"

/** Who asked (a user id from the JWT, or an external system's name). */
const By = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

/** Command: stop dispatching new work (in-flight contacts finish their step). */
export const PauseCampaign = Message.define(
  "campaign.pause",
  Schema.Struct({ campaignId: CampaignId, reason: Schema.String, by: By }),
  { description: "Pause a running campaign." }
)

/** Command: continue a paused campaign. */
export const ResumeCampaign = Message.define(
  "campaign.resume",
  Schema.Struct({ campaignId: CampaignId, by: By }),
  { description: "Resume a paused campaign." }
)

/** Command: stop a campaign for good; contacts not yet engaged are skipped. */
export const CancelCampaign = Message.define(
  "campaign.cancel",
  Schema.Struct({ campaignId: CampaignId, reason: Schema.String, by: By }),
  { description: "Cancel a campaign." }
)

/** Command: change a live campaign's target, budget or channels. */
export const EditCampaign = Message.define(
  "campaign.edit",
  Schema.Struct({
    campaignId: CampaignId,
    by: By,
    targetCount: Schema.optional(Schema.Int.pipe(Schema.positive())),
    budget: Schema.optional(Budget),
    channels: Schema.optional(Schema.NonEmptyArray(Channel))
  }),
  { description: "Edit a live campaign (target count, budget, channels)." }
)

/** Command: approve a pending high-risk action. */
export const ApproveAction = Message.define(
  "campaign.approve",
  Schema.Struct({ campaignId: CampaignId, approvalId: Schema.String, by: By }),
  { description: "Approve a pending action of a campaign." }
)

/** Command: reject a pending high-risk action. */
export const RejectAction = Message.define(
  "campaign.reject",
  Schema.Struct({ campaignId: CampaignId, approvalId: Schema.String, by: By, reason: Schema.String }),
  { description: "Reject a pending action of a campaign." }
)

/** Event: the campaign's state changed (paused, resumed, cancelled, edited). */
export const CampaignStateChanged = Message.define(
  "event.campaign-state-changed",
  Schema.Struct({
    campaignId: CampaignId,
    state: Schema.Literal("paused", "resumed", "cancelled", "edited"),
    reason: Schema.NullOr(Schema.String),
    by: Schema.String
  }),
  { description: "A campaign was paused, resumed, cancelled or edited, by whom and why." }
)

/** Event: an action waits for approval. */
export const ApprovalRequested = Message.define(
  "event.approval-requested",
  Schema.Struct({
    campaignId: CampaignId,
    approvalId: Schema.String,
    action: Schema.String,
    reason: Schema.String,
    details: Schema.Record({ key: Schema.String, value: Schema.Unknown })
  }),
  { description: "A high-risk action waits for approval." }
)

/** Event: an approval was decided. */
export const ApprovalDecided = Message.define(
  "event.approval-decided",
  Schema.Struct({
    campaignId: CampaignId,
    approvalId: Schema.String,
    decision: Schema.Literal("approved", "rejected"),
    by: Schema.String,
    reason: Schema.NullOr(Schema.String)
  }),
  { description: "An approval was granted or refused." }
)

/** Event: a budget ran out; the campaign is paused. */
export const BudgetExhausted = Message.define(
  "event.budget-exhausted",
  Schema.Struct({
    campaignId: CampaignId,
    scope: Schema.Literal("campaign", "tenant"),
    budget: Schema.Literal("actions", "cost"),
    limit: Schema.Number,
    used: Schema.Number,
    requested: Schema.Number
  }),
  { description: "A campaign or tenant budget is exhausted: which one, and by how much." }
)

/** Control commands (routed to the campaign actor). */
export const commands: ReadonlyArray<Message.MessageType> = [
  PauseCampaign,
  ResumeCampaign,
  CancelCampaign,
  EditCampaign,
  ApproveAction,
  RejectAction
]

/** Every control message. */
export const all: ReadonlyArray<Message.MessageType> = [
  ...commands,
  CampaignStateChanged,
  ApprovalRequested,
  ApprovalDecided,
  BudgetExhausted
]
