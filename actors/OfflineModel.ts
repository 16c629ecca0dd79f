/**
 * The offline model: a deterministic stand-in for an LLM, used by tests and the default
 * run. It is named as such everywhere it appears (`offline-v1`). Its outputs are
 * schema-valid plans, drafts and analyses computed from the contact data and the goal,
 * never random, so a re-run after a crash decides exactly the same thing.
 */
import type { Campaign } from "../protocols/index.js"

/** The model name recorded on every output. */
export const MODEL_NAME = "offline-v1"

type Filter = Campaign.AudienceFilter

/** A planner decision: call an action, or finish with a plan. */
export type PlanStep =
  | { readonly _tag: "Act"; readonly thought: string; readonly action: "query_contacts"; readonly filter: Filter }
  | { readonly _tag: "Finish"; readonly thought: string; readonly filter: Filter; readonly channels: ReadonlyArray<Campaign.Channel> }

/** One observation the planner made. */
export interface Observation {
  readonly filter: Filter
  readonly matching: number
}

const words = (s: string) => s.toLowerCase()

/** Reads the audience the goal implies on top of the requested filter. */
export const inferFilter = (goal: string, requested: Filter): Filter => {
  const g = words(goal)
  const segments = requested.segments ?? (g.includes("enterprise") ? ["enterprise" as const] : g.includes("smb") ? ["smb" as const] : undefined)
  const minLeadScore = requested.minLeadScore ?? (g.includes("qualified") || g.includes("hot") ? 60 : undefined)
  return { ...requested, ...(segments ? { segments } : {}), ...(minLeadScore !== undefined ? { minLeadScore } : {}) }
}

/** Orders channels as the goal asks ("call" puts voice first, "email" email first…). */
export const orderChannels = (goal: string, channels: ReadonlyArray<Campaign.Channel>): Array<Campaign.Channel> => {
  const g = words(goal)
  const rank = (c: Campaign.Channel) =>
    (c === "voice" && /\bcall/.test(g)) || (c === "email" && g.includes("email")) || (c === "sms" && /\b(sms|text)/.test(g)) ? 0 : 1
  return [...channels].sort((a, b) => rank(a) - rank(b))
}

/** Next ReAct step, from the goal and what was observed so far. Bounded to 3 queries. */
export const nextPlanStep = (
  goal: string,
  requested: Filter,
  channels: ReadonlyArray<Campaign.Channel>,
  target: number,
  observations: ReadonlyArray<Observation>
): PlanStep => {
  const inferred = inferFilter(goal, requested)
  if (observations.length === 0) {
    return {
      _tag: "Act",
      thought: `The goal "${goal}" implies ${JSON.stringify(inferred)}; count who matches.`,
      action: "query_contacts",
      filter: inferred
    }
  }
  const last = observations[observations.length - 1]!
  if (last.matching < target && last.filter.minLeadScore !== undefined && requested.minLeadScore === undefined && observations.length < 3) {
    const relaxed: Filter = { ...last.filter, minLeadScore: Math.max(0, last.filter.minLeadScore - 20) }
    return {
      _tag: "Act",
      thought: `Only ${last.matching} of ${target} wanted match; relax the inferred lead-score floor to ${relaxed.minLeadScore}.`,
      action: "query_contacts",
      filter: relaxed
    }
  }
  const ordered = orderChannels(goal, channels)
  return {
    _tag: "Finish",
    thought: `${last.matching} contacts match; target the best ${Math.min(target, last.matching)} by lead score, channels ${ordered.join(" → ")}.`,
    filter: last.filter,
    channels: ordered
  }
}

/** A brief for the content agent. */
export const brief = (goal: string): Campaign.Brief => ({
  goal,
  tone: /enterprise|executive|cxo/i.test(goal) ? "consultative" : "friendly",
  valueProposition: "cut manual follow-up work in the sales team by automating routine outreach",
  callToAction: /call|meeting|demo/i.test(goal) ? "book a 20-minute call" : "reply to this message"
})

const firstName = (name: string) => name.split(" ")[0] ?? name

/** A personalised message for one contact and channel (with the AI-disclosure line). */
export const draft = (contact: Campaign.ContactSnapshot, channel: Campaign.Channel, b: Campaign.Brief) => {
  const hello = `Hi ${firstName(contact.name)}`
  const pitch = `teams like ${contact.company}'s in ${contact.industry} use us to ${b.valueProposition}`
  const disclosure = "This message was prepared by an AI assistant on behalf of the sales team."
  switch (channel) {
    case "email":
      return {
        subject: `${contact.company}: ${b.callToAction}?`,
        body: `${hello},\n\nAs ${contact.title} you may know the cost of manual outreach: ${pitch}. Would you ${b.callToAction}?\n\n${disclosure}`,
        model: MODEL_NAME
      }
    case "sms":
      return { subject: null, body: `${hello}, ${pitch}. Can we ${b.callToAction}? ${disclosure} Reply STOP to opt out.`, model: MODEL_NAME }
    case "voice":
      return {
        subject: null,
        body: `Opening: "${hello}, this is an AI assistant calling for the sales team." Pitch: ${pitch}. Ask: ${b.callToAction}.`,
        model: MODEL_NAME
      }
  }
}

const SIGNALS = ["pricing", "demo", "timeline", "budget", "integration"] as const

/** Reads sentiment, buying signals and the next step from an outcome. */
export const analyse = (input: {
  readonly outcome: Campaign.DeliveryOutcome
  readonly transcript: string | null
  readonly leadScore: number
}) => {
  const t = (input.transcript ?? "").toLowerCase()
  const buyingSignals = SIGNALS.filter((s) => t.includes(s))
  const negative = /not interested|remove me|stop calling/.test(t)
  const sentiment = negative ? ("negative" as const) : buyingSignals.length > 0 ? ("positive" as const) : ("neutral" as const)
  const leadStatus = negative
    ? ("unqualified" as const)
    : buyingSignals.includes("demo") && input.leadScore >= 80
      ? ("converted" as const)
      : sentiment === "positive" || input.leadScore >= 85
        ? ("qualified" as const)
        : ("nurture" as const)
  const nextBestAction =
    leadStatus === "converted"
      ? "book the demo the contact asked for"
      : leadStatus === "qualified"
        ? "follow up by email with pricing within 2 days"
        : leadStatus === "unqualified"
          ? "stop the sequence and respect the refusal"
          : input.outcome === "no-answer" || input.outcome === "voicemail"
            ? "retry on another channel in 3 days"
            : "add to nurture sequence"
  return { sentiment, buyingSignals, nextBestAction, leadStatus, model: MODEL_NAME }
}
