/**
 * What an episode is: one interaction (a call, an email, a meeting, an SMS…) with its
 * participants, time, channel, outcome, the entities extracted from it (products,
 * objections raised or resolved, next steps) and its full content, plus who recorded it.
 * Also the row codec of the `episodes` table.
 */
import { Schema } from "effect"

/** How the interaction happened. */
export const EpisodeChannel = Schema.Literal("voice", "email", "sms", "meeting", "chat", "note")
export type EpisodeChannel = typeof EpisodeChannel.Type

/** Who started it: the contact (`inbound`), us (`outbound`), or neither (`internal`, e.g. a note). */
export const Direction = Schema.Literal("inbound", "outbound", "internal")
export type Direction = typeof Direction.Type

/** Someone who took part. Contacts are indexed: `EpisodicMemory` answers per contact. */
export const Participant = Schema.Struct({
  kind: Schema.Literal("contact", "user", "agent"),
  id: Schema.String,
  role: Schema.optional(Schema.String)
})
export type Participant = typeof Participant.Type

/** An objection as the episode left it: raised, or resolved. */
export const Objection = Schema.Struct({
  topic: Schema.String,
  status: Schema.Literal("raised", "resolved")
})
export type Objection = typeof Objection.Type

/** Entities extracted from an episode. */
export const Entities = Schema.Struct({
  products: Schema.Array(Schema.String),
  objections: Schema.Array(Objection),
  nextSteps: Schema.Array(Schema.String)
})
export type Entities = typeof Entities.Type

/** No entities. */
export const noEntities: Entities = { products: [], objections: [], nextSteps: [] }

/** A stored episode. */
export const Episode = Schema.Struct({
  id: Schema.String,
  channel: EpisodeChannel,
  direction: Direction,
  occurredAt: Schema.DateFromSelf,
  durationSec: Schema.NullOr(Schema.Number),
  outcome: Schema.NullOr(Schema.String),
  summary: Schema.NullOr(Schema.String),
  content: Schema.String,
  entities: Entities,
  participants: Schema.Array(Participant),
  campaignId: Schema.NullOr(Schema.String),
  dealId: Schema.NullOr(Schema.String),
  /** Where it came from, e.g. the inbound message type. */
  source: Schema.String,
  /** Principal that recorded it (from `Tenancy.currentActor`). */
  recordedBy: Schema.String,
  viaAgent: Schema.NullOr(Schema.String),
  traceId: Schema.NullOr(Schema.String)
})
export type Episode = typeof Episode.Type

/** What `record` takes: an episode without its provenance (taken from the current actor). */
export type NewEpisode = Omit<Episode, "recordedBy" | "viaAgent" | "traceId">

/** The contact ids among an episode's participants. */
export const contactIdsOf = (e: Pick<Episode, "participants">): ReadonlyArray<string> => [
  ...new Set(e.participants.filter((p) => p.kind === "contact").map((p) => p.id))
]

/** The columns of an episode row, in the order `EpisodeRow` expects. */
export const columns =
  "e.id, e.channel, e.direction, e.occurred_at, e.duration_sec, e.outcome, e.summary, e.content, e.entities, " +
  "e.participants, e.campaign_id, e.deal_id, e.source, e.recorded_by, e.via_agent, e.trace_id"

/** An `episodes` row as the driver returns it (jsonb parsed). */
const EpisodeRow = Schema.Struct({
  id: Schema.String,
  channel: EpisodeChannel,
  direction: Direction,
  occurred_at: Schema.DateFromSelf,
  duration_sec: Schema.NullOr(Schema.Number),
  outcome: Schema.NullOr(Schema.String),
  summary: Schema.NullOr(Schema.String),
  content: Schema.String,
  entities: Entities,
  participants: Schema.Array(Participant),
  campaign_id: Schema.NullOr(Schema.String),
  deal_id: Schema.NullOr(Schema.String),
  source: Schema.String,
  recorded_by: Schema.String,
  via_agent: Schema.NullOr(Schema.String),
  trace_id: Schema.NullOr(Schema.String)
})

/** An `episodes` row ⇄ `Episode`. */
export const EpisodeFromRow = Schema.transform(EpisodeRow, Episode, {
  strict: true,
  decode: (r) => ({
    id: r.id,
    channel: r.channel,
    direction: r.direction,
    occurredAt: r.occurred_at,
    durationSec: r.duration_sec,
    outcome: r.outcome,
    summary: r.summary,
    content: r.content,
    entities: r.entities,
    participants: r.participants,
    campaignId: r.campaign_id,
    dealId: r.deal_id,
    source: r.source,
    recordedBy: r.recorded_by,
    viaAgent: r.via_agent,
    traceId: r.trace_id
  }),
  encode: (e) => ({
    id: e.id,
    channel: e.channel,
    direction: e.direction,
    occurred_at: e.occurredAt,
    duration_sec: e.durationSec,
    outcome: e.outcome,
    summary: e.summary,
    content: e.content,
    entities: e.entities,
    participants: e.participants,
    campaign_id: e.campaignId,
    deal_id: e.dealId,
    source: e.source,
    recorded_by: e.recordedBy,
    via_agent: e.viaAgent,
    trace_id: e.traceId
  })
})

/** Mentions indexed for an episode: (kind, normalised term, label as said). */
export const mentionsOf = (entities: Entities): ReadonlyArray<readonly [kind: string, term: string, label: string]> => {
  const out = new Map<string, readonly [string, string, string]>()
  const add = (kind: string, label: string) => {
    const term = normalizeTerm(label)
    if (term.length > 0) out.set(`${kind}\u0000${term}`, [kind, term, label.trim()])
  }
  for (const p of entities.products) add("product", p)
  for (const o of entities.objections) add(o.status === "raised" ? "objection" : "objection-resolved", o.topic)
  for (const s of entities.nextSteps) add("next-step", s)
  return [...out.values()]
}

/** How terms are compared: case-folded, inner whitespace collapsed. */
export const normalizeTerm = (s: string): string => s.trim().toLowerCase().replace(/\s+/g, " ")
