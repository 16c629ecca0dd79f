/**
 * External messages that feed the knowledge store: an email received, a call ended, a
 * meeting held, a CRM record changed. External systems publish them as commands
 * (`<p>.<tenant>.cmd.inbound.<kind>`); the command router forwards them to the `ingest`
 * agent's work queue. Each carries the sender's own `eventId`: the ingest agent records it,
 * so the same event delivered twice (or re-sent with a new envelope id) changes nothing.
 *
 * Also here: the CRM records those messages carry (companies, deals), so that storage rows
 * and wire payloads derive from one schema. Times on the wire are epoch milliseconds.
 */
import { Schema } from "effect"
import { ContactSnapshot, Segment } from "./Campaign.js"
import { CampaignId, ContactId, Token } from "./Ids.js"
import * as Message from "./Message.js"

/** Company id. */
export const CompanyId = Token.pipe(Schema.brand("CompanyId"))
export type CompanyId = typeof CompanyId.Type

/** Deal id. */
export const DealId = Token.pipe(Schema.brand("DealId"))
export type DealId = typeof DealId.Type

/** The sender's id of an external event: what makes ingestion idempotent. */
export const EventId = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_:.\-]{1,128}$/), Schema.brand("EventId"))
export type EventId = typeof EventId.Type

/** Epoch milliseconds. */
export const Millis = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** A company of the CRM. */
export const Company = Schema.Struct({
  id: CompanyId,
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  domain: Schema.NullOr(Schema.String),
  industry: Schema.NullOr(Schema.String),
  region: Schema.NullOr(Schema.String),
  segment: Schema.NullOr(Segment)
})
export type Company = typeof Company.Type

/** Where a deal is. */
export const DealStage = Schema.Literal("prospect", "qualified", "proposal", "negotiation", "won", "lost")
export type DealStage = typeof DealStage.Type

/** A deal (opportunity) of the CRM. */
export const Deal = Schema.Struct({
  id: DealId,
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  companyId: Schema.NullOr(CompanyId),
  contactId: Schema.NullOr(ContactId),
  stage: DealStage,
  amount: Schema.Number.pipe(Schema.nonNegative()),
  currency: Schema.String.pipe(Schema.length(3)),
  products: Schema.Array(Schema.String),
  expectedClose: Schema.NullOr(Millis)
})
export type Deal = typeof Deal.Type

/** A contact as the CRM sends it: the snapshot plus its company and reporting lines. */
export const ContactRecord = Schema.Struct({
  ...ContactSnapshot.fields,
  companyId: Schema.NullOr(CompanyId),
  reportsTo: Schema.NullOr(ContactId),
  referredBy: Schema.NullOr(ContactId)
})
export type ContactRecord = typeof ContactRecord.Type

/** A company as the CRM sends it, with the companies it competes or partners with. */
export const CompanyRecord = Schema.Struct({
  ...Company.fields,
  competitors: Schema.Array(CompanyId),
  partners: Schema.Array(CompanyId)
})
export type CompanyRecord = typeof CompanyRecord.Type

/** One change of a CRM record: an upsert with the whole record, or a delete by id. */
export const RecordChange = Schema.Union(
  Schema.TaggedStruct("ContactUpserted", { contact: ContactRecord }),
  Schema.TaggedStruct("CompanyUpserted", { company: CompanyRecord }),
  Schema.TaggedStruct("DealUpserted", { deal: Deal }),
  Schema.TaggedStruct("ContactDeleted", { contactId: ContactId }),
  Schema.TaggedStruct("CompanyDeleted", { companyId: CompanyId }),
  Schema.TaggedStruct("DealDeleted", { dealId: DealId })
)
export type RecordChange = typeof RecordChange.Type

const Text = (max: number) => Schema.String.pipe(Schema.maxLength(max))

/** External event: an email from a contact arrived. */
export const EmailReceived = Message.define(
  "inbound.email-received",
  Schema.Struct({
    eventId: EventId,
    contactId: ContactId,
    from: Schema.String,
    subject: Text(1_000),
    body: Text(200_000),
    receivedAt: Millis,
    campaignId: Schema.NullOr(CampaignId)
  }),
  { description: "An email from a contact was received (mail gateway, CRM inbox sync)." }
)

/** How a call ended. */
export const CallOutcome = Schema.Literal("answered", "voicemail", "no-answer", "busy", "failed")
export type CallOutcome = typeof CallOutcome.Type

/** External event: a call with a contact ended. */
export const CallEnded = Message.define(
  "inbound.call-ended",
  Schema.Struct({
    eventId: EventId,
    callId: Schema.String,
    contactId: ContactId,
    direction: Schema.Literal("inbound", "outbound"),
    startedAt: Millis,
    endedAt: Millis,
    outcome: CallOutcome,
    summary: Schema.NullOr(Text(10_000)),
    transcript: Schema.NullOr(Text(500_000)),
    campaignId: Schema.NullOr(CampaignId)
  }),
  { description: "A call ended (telephony provider, voice agent end-of-call report), with its transcript." }
)

/** External event: a meeting with one or more contacts was held. */
export const MeetingHeld = Message.define(
  "inbound.meeting-held",
  Schema.Struct({
    eventId: EventId,
    meetingId: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/)),
    title: Text(1_000),
    contactIds: Schema.NonEmptyArray(ContactId),
    startedAt: Millis,
    durationMin: Schema.Number.pipe(Schema.nonNegative()),
    notes: Text(200_000),
    dealId: Schema.NullOr(DealId)
  }),
  { description: "A meeting was held (calendar sync), with its attendees and notes." }
)

/** External event: a record changed in the CRM of record. */
export const CrmRecordChanged = Message.define(
  "inbound.crm-record-changed",
  Schema.Struct({
    eventId: EventId,
    changedAt: Millis,
    changedBy: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
    change: RecordChange
  }),
  { description: "A contact, company or deal was created, updated or deleted in the CRM of record." }
)

/** Every inbound message type. */
export const all: ReadonlyArray<Message.MessageType> = [EmailReceived, CallEnded, MeetingHeld, CrmRecordChanged]

/** The payload of any inbound message, tagged by its message type. */
export type InboundEvent =
  | { readonly type: "inbound.email-received"; readonly payload: typeof EmailReceived.payload.Type }
  | { readonly type: "inbound.call-ended"; readonly payload: typeof CallEnded.payload.Type }
  | { readonly type: "inbound.meeting-held"; readonly payload: typeof MeetingHeld.payload.Type }
  | { readonly type: "inbound.crm-record-changed"; readonly payload: typeof CrmRecordChanged.payload.Type }
