/**
 * The planner's typed action set (the NexusCRM design's 23 actions), each an Effect
 * `Schema` (a tagged struct: its tag is the action name, its fields the input), with
 * metadata: its category, whether it only reads, and its risk. Read-only actions run while
 * planning and give observations; CRM writes run at once, exactly once per step; outreach
 * actions shape the plan (they run when the campaign dispatches); destructive ones go to
 * the campaign actor and wait for a person's confirmation.
 */
import { Schema } from "effect"
import { AudienceFilter, Channel } from "../../protocols/Campaign.js"
import { AdjustPriorityAction, EscalateAction, PauseCampaignAction } from "../../protocols/Planner.js"

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64))
const Text = Schema.String.pipe(Schema.maxLength(2000))
const Limit = Schema.Int.pipe(Schema.between(1, 50))

/** Data queries. */
export const QueryContacts = Schema.TaggedStruct("query_contacts", { filter: AudienceFilter })
export const QueryCompanies = Schema.TaggedStruct("query_companies", { filter: AudienceFilter, limit: Limit })
export const QueryDeals = Schema.TaggedStruct("query_deals", { stage: Schema.NullOr(Schema.String), limit: Limit })
export const TraverseGraph = Schema.TaggedStruct("traverse_graph", {
  from: Id,
  relation: Schema.Literal("works_at", "colleague_of", "similar_company", "any"),
  depth: Schema.Int.pipe(Schema.between(1, 3))
})
export const SemanticSearch = Schema.TaggedStruct("semantic_search", { query: Text, limit: Limit })
export const ActivityHistory = Schema.TaggedStruct("activity_history", { contactId: Id, limit: Limit })
export const LeadScore = Schema.TaggedStruct("lead_score", { contactId: Id })
export const CampaignAnalytics = Schema.TaggedStruct("campaign_analytics", { campaignId: Schema.NullOr(Id) })

/** Communication (outreach and CRM writes). */
const Outreach = { filter: AudienceFilter, brief: Text, count: Schema.Int.pipe(Schema.nonNegative()) }
export const VoiceCall = Schema.TaggedStruct("voice_call", Outreach)
export const SendEmail = Schema.TaggedStruct("send_email", Outreach)
export const SendSms = Schema.TaggedStruct("send_sms", Outreach)
export const SendWhatsapp = Schema.TaggedStruct("send_whatsapp", Outreach)
export const ScheduleMeeting = Schema.TaggedStruct("schedule_meeting", { contactId: Id, withinDays: Schema.Int.pipe(Schema.between(1, 60)) })
export const CreateTask = Schema.TaggedStruct("create_task", { title: Text, dueInDays: Schema.Int.pipe(Schema.between(0, 90)) })
export const LogActivity = Schema.TaggedStruct("log_activity", { contactId: Id, note: Text })

/** Analysis. */
export const AnalyseTranscript = Schema.TaggedStruct("analyse_transcript", { transcript: Text })
export const GenerateContent = Schema.TaggedStruct("generate_content", { channel: Channel, contactId: Id })
export const CloseProbability = Schema.TaggedStruct("close_probability", { contactId: Id })
export const NextBestAction = Schema.TaggedStruct("next_best_action", { contactId: Id })
export const ChurnRisk = Schema.TaggedStruct("churn_risk", { filter: AudienceFilter })

/** Workflow control (typed in protocols/: they travel to the campaign actor). */
export const PauseCampaign = PauseCampaignAction
export const AdjustPriority = AdjustPriorityAction
export const Escalate = EscalateAction

/** Every action. */
export const Action = Schema.Union(
  QueryContacts, QueryCompanies, QueryDeals, TraverseGraph, SemanticSearch, ActivityHistory, LeadScore, CampaignAnalytics,
  VoiceCall, SendEmail, SendSms, SendWhatsapp, ScheduleMeeting, CreateTask, LogActivity,
  AnalyseTranscript, GenerateContent, CloseProbability, NextBestAction, ChurnRisk,
  PauseCampaign, AdjustPriority, Escalate
)
export type Action = typeof Action.Type
/** An action's name. */
export type ActionName = Action["_tag"]

/** The model finishes: the audience, channel order, touches and the content brief. */
export const Finish = Schema.TaggedStruct("finish", {
  filter: AudienceFilter,
  channels: Schema.NonEmptyArray(Channel),
  maxTouches: Schema.Int.pipe(Schema.between(1, 5)),
  /** Hours between touches. */
  gapHours: Schema.Number.pipe(Schema.between(0, 24 * 30)),
  tone: Schema.String,
  valueProposition: Schema.String,
  callToAction: Schema.String
})
export type Finish = typeof Finish.Type

/** One planner decision: a thought and the next action, or finish. */
export const Decision = Schema.Struct({ thought: Text, next: Schema.Union(Action, Finish) })
export type Decision = typeof Decision.Type

/** What kind of action it is. */
export type Category = "data" | "communication" | "analysis" | "workflow"

/** How an action is treated while planning. */
export type Risk =
  /** Reads only: runs now. */
  | "read"
  /** Contacts people: taken into the plan, runs at dispatch. */
  | "outreach"
  /** Writes the CRM: runs now, once per planner step (recorded in the action ledger), audited as made through the planner. */
  | "write"
  /** Changes running work: waits for a person's confirmation. */
  | "destructive"

/** Metadata of an action. */
export interface ActionInfo {
  readonly category: Category
  readonly risk: Risk
  readonly description: string
  /** The delivery channel of an outreach action, if it has one we support. */
  readonly channel?: Channel | "whatsapp"
}

/** Metadata of every action. */
export const info: Readonly<Record<ActionName, ActionInfo>> = {
  query_contacts: { category: "data", risk: "read", description: "Count contacts matching a filter and see the best few." },
  query_companies: { category: "data", risk: "read", description: "Companies of contacts matching a filter." },
  query_deals: { category: "data", risk: "read", description: "Open deals, optionally by stage." },
  traverse_graph: { category: "data", risk: "read", description: "Related contacts and companies in the knowledge graph." },
  semantic_search: { category: "data", risk: "read", description: "Contacts and notes similar in meaning to a query." },
  activity_history: { category: "data", risk: "read", description: "Past activities and campaign outcomes of a contact." },
  lead_score: { category: "data", risk: "read", description: "A contact's lead score and its main factors." },
  campaign_analytics: { category: "data", risk: "read", description: "Reach and conversion of past campaigns." },
  voice_call: { category: "communication", risk: "outreach", channel: "voice", description: "Call contacts matching a filter (AI voice)." },
  send_email: { category: "communication", risk: "outreach", channel: "email", description: "Email contacts matching a filter." },
  send_sms: { category: "communication", risk: "outreach", channel: "sms", description: "Text contacts matching a filter." },
  send_whatsapp: { category: "communication", risk: "outreach", channel: "whatsapp", description: "WhatsApp contacts matching a filter." },
  schedule_meeting: { category: "communication", risk: "write", description: "Propose a meeting to a contact within some days (recorded in the CRM)." },
  create_task: { category: "communication", risk: "write", description: "Create a follow-up task for the sales team (recorded in the CRM)." },
  log_activity: { category: "communication", risk: "write", description: "Log a note on a contact's timeline (recorded in the CRM)." },
  analyse_transcript: { category: "analysis", risk: "read", description: "Sentiment, signals and objections of a transcript." },
  generate_content: { category: "analysis", risk: "read", description: "Draft a message for one contact to check the brief." },
  close_probability: { category: "analysis", risk: "read", description: "Probability that a contact's deal closes." },
  next_best_action: { category: "analysis", risk: "read", description: "The next best step with a contact." },
  churn_risk: { category: "analysis", risk: "read", description: "Churn risk of customers matching a filter." },
  pause_campaign: { category: "workflow", risk: "destructive", description: "Pause the campaign (needs confirmation)." },
  adjust_priority: { category: "workflow", risk: "destructive", description: "Change the priority of contacts in running work (needs confirmation)." },
  escalate: { category: "workflow", risk: "destructive", description: "Hand a decision to a person (needs confirmation)." }
}

/** Every action name, in catalogue order. */
export const names: ReadonlyArray<ActionName> = Object.keys(info) as Array<ActionName>
