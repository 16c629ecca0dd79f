/**
 * The offline model: a deterministic stand-in for an LLM, used by tests and the default
 * run. It is named as such everywhere it appears (`offline-v1`). Its outputs are
 * schema-valid plans, drafts and analyses computed from the contact data and the goal,
 * never random, so a re-run after a crash decides exactly the same thing.
 */
import type { Campaign } from "../protocols/index.js"
import type { ContextFacts } from "../storage/ContactContext.js"
import type { Action, Decision } from "./planner/Actions.js"

/** The model name recorded on every output. */
export const MODEL_NAME = "offline-v1"

type Filter = Campaign.AudienceFilter

const words = (s: string) => s.toLowerCase()

/** Reads the audience the goal implies on top of the requested filter. */
export const inferFilter = (goal: string, requested: Filter): Filter => {
  const g = words(goal)
  const segments = requested.segments ?? (g.includes("enterprise") ? ["enterprise" as const] : g.includes("smb") ? ["smb" as const] : undefined)
  const minLeadScore = requested.minLeadScore ?? (g.includes("qualified") || g.includes("hot") ? 60 : undefined)
  return { ...requested, ...(segments ? { segments } : {}), ...(minLeadScore !== undefined ? { minLeadScore } : {}) }
}

/** Orders channels as the goal mentions them ("call, then email" puts voice first); unmentioned ones keep their order after. */
export const orderChannels = (goal: string, channels: ReadonlyArray<Campaign.Channel>): Array<Campaign.Channel> => {
  const g = words(goal)
  const mention: Readonly<Record<Campaign.Channel, RegExp>> = { voice: /\bcall/, email: /\be-?mail/, sms: /\b(sms|text)/ }
  const rank = (c: Campaign.Channel) => {
    const m = mention[c].exec(g)
    return m === null ? Number.MAX_SAFE_INTEGER : m.index
  }
  return [...channels].sort((a, b) => rank(a) - rank(b))
}

/** One step the planner took, as the offline policy reads it. */
export interface SeenStep {
  readonly action: string
  readonly status: string
  readonly data: unknown
}

/** What the planner's model sees at each step. */
export interface PlannerInput {
  readonly goal: string
  readonly audience: Filter
  readonly channels: ReadonlyArray<Campaign.Channel>
  readonly targetCount: number
  readonly maxSteps: number
  readonly steps: ReadonlyArray<SeenStep>
}

const research: ReadonlyArray<readonly [RegExp, (i: PlannerInput, filter: Filter, top: string) => Action]> = [
  [/similar|lookalike|look-alike|like our best/, (i) => ({ _tag: "semantic_search", query: i.goal, limit: 10 })],
  [/churn|renewal|retain|retention/, (_, filter) => ({ _tag: "churn_risk", filter })],
  [/deal|pipeline|opportunit/, () => ({ _tag: "query_deals", stage: null, limit: 10 })],
  [/account|compan/, (_, filter) => ({ _tag: "query_companies", filter, limit: 10 })],
  [/re-?engage|history|past|dormant/, (_, __, top) => ({ _tag: "activity_history", contactId: top, limit: 10 })],
  [/analytics|last campaign|previous campaign|benchmark/, () => ({ _tag: "campaign_analytics", campaignId: null })],
  [/priorit|score/, (_, __, top) => ({ _tag: "lead_score", contactId: top })],
  [/decision maker|colleague|org chart|stakeholder/, (_, __, top) => ({ _tag: "traverse_graph", from: top, relation: "any", depth: 2 })],
  [/close|closing|likel/, (_, __, top) => ({ _tag: "close_probability", contactId: top })]
]

const units: Readonly<Record<string, number>> = { second: 1 / 3600, minute: 1 / 60, hour: 1, day: 24, week: 168 }

/** The gap between touches the goal asks for ("after 3 days"), default 48 hours. */
export const gapHoursOf = (goal: string): number => {
  const m = /(?:after|every|wait)\s+(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week)s?/.exec(goal.toLowerCase())
  return m ? Number(m[1]) * units[m[2]!]! : 48
}

const outreach: Readonly<Record<Campaign.Channel, "voice_call" | "send_email" | "send_sms">> = {
  voice: "voice_call",
  email: "send_email",
  sms: "send_sms"
}

/**
 * The offline planner: a deterministic ReAct policy over the action set. It counts the
 * audience the goal implies (relaxing an inferred lead-score floor when too few match),
 * researches what the goal mentions, asks for confirmation of what the goal wants paused,
 * escalated or re-prioritised, writes the tasks, notes and meetings it asks for, proposes
 * one outreach action per channel in the order the goal asks, and finishes within
 * `maxSteps`.
 */
export const planDecision = (i: PlannerInput): Decision => {
  const g = words(i.goal)
  const inferred = inferFilter(i.goal, i.audience)
  const queries = i.steps.filter((s) => s.action === "query_contacts" && s.status === "observed")
  if (queries.length === 0) {
    return { thought: `The goal "${i.goal}" implies ${JSON.stringify(inferred)}; count who matches.`, next: { _tag: "query_contacts", filter: inferred } }
  }
  const last = queries[queries.length - 1]!.data as { matching: number; filter: Filter; top: ReadonlyArray<string> }
  const left = i.maxSteps - i.steps.length
  const ordered = orderChannels(i.goal, i.channels)
  const touches = /follow[- ]?up|sequence|nurture|cadence|multi-touch/.test(g) ? ordered.length : 1
  const finish = (thought: string): Decision => {
    const proposed = new Set(i.steps.filter((s) => s.status === "proposed" || s.status === "needs-confirmation").map((s) => s.action))
    const channels = ordered.filter((c) => proposed.has(outreach[c]))
    const b = brief(i.goal)
    return {
      thought,
      next: {
        _tag: "finish",
        filter: last.filter,
        channels: (channels.length > 0 ? channels : ordered) as [Campaign.Channel, ...Array<Campaign.Channel>],
        maxTouches: Math.max(1, Math.min(touches, channels.length || ordered.length)),
        gapHours: gapHoursOf(i.goal),
        tone: b.tone,
        valueProposition: b.valueProposition,
        callToAction: b.callToAction
      }
    }
  }
  if (left <= 1) return finish(`Step budget reached; plan for the ${Math.min(i.targetCount, last.matching)} best matching contacts.`)
  if (last.matching < i.targetCount && last.filter.minLeadScore !== undefined && i.audience.minLeadScore === undefined && queries.length < 3) {
    const relaxed: Filter = { ...last.filter, minLeadScore: Math.max(0, last.filter.minLeadScore - 20) }
    return {
      thought: `Only ${last.matching} of ${i.targetCount} wanted match; relax the inferred lead-score floor to ${relaxed.minLeadScore}.`,
      next: { _tag: "query_contacts", filter: relaxed }
    }
  }
  const done = new Set(i.steps.map((s) => s.action))
  const top = last.top[0] ?? "none"
  const pending = ordered.filter((c) => !done.has(outreach[c]))
  // room for every outreach proposal and the finish stays reserved
  if (left > pending.length + 2) {
    for (const [pattern, make] of research) {
      const action = make(i, last.filter, top)
      if (pattern.test(g) && !done.has(action._tag)) return { thought: `The goal mentions it: ${action._tag} before committing.`, next: action }
    }
    if (/whatsapp/.test(g) && !done.has("send_whatsapp")) {
      return { thought: "The goal asks for WhatsApp; check whether it can be used.", next: { _tag: "send_whatsapp", filter: last.filter, brief: i.goal, count: last.matching } }
    }
    if (/escalat|manager|sign-?off/.test(g) && !done.has("escalate")) {
      return { thought: "The goal asks for a person's sign-off.", next: { _tag: "escalate", reason: `goal: ${i.goal}`, to: "sales-manager" } }
    }
    if (/\bpause\b|hold off|stop other/.test(g) && !done.has("pause_campaign")) {
      return { thought: "The goal asks to pause running outreach first.", next: { _tag: "pause_campaign", reason: `goal: ${i.goal}` } }
    }
    const priority = /\b(raise|boost|bump|high|higher)\b[^.;]*\bpriority\b/.test(g) ? "high" : /\b(low|lower)\b[^.;]*\bpriority\b/.test(g) ? "low" : null
    if (priority !== null && !done.has("adjust_priority")) {
      return { thought: `The goal asks for ${priority} priority on these contacts.`, next: { _tag: "adjust_priority", filter: last.filter, priority } }
    }
    if (/\b(create|add|open)\b[^.;]*\btask\b/.test(g) && !done.has("create_task")) {
      return { thought: "The goal asks for a follow-up task for the team.", next: { _tag: "create_task", title: `Follow up: ${i.goal}`.slice(0, 200), dueInDays: 3 } }
    }
    if (/\blog\b[^.;]*\b(note|activity)\b/.test(g) && !done.has("log_activity") && top !== "none") {
      return { thought: `The goal asks to log a note on the best match, ${top}.`, next: { _tag: "log_activity", contactId: top, note: `Selected for: ${i.goal}`.slice(0, 500) } }
    }
    if (/\b(schedule|book|propose)\b[^.;]*\bmeeting\b/.test(g) && !done.has("schedule_meeting") && top !== "none") {
      return { thought: `The goal asks for a meeting with the best match, ${top}.`, next: { _tag: "schedule_meeting", contactId: top, withinDays: 14 } }
    }
  }
  const channel = pending[0]
  if (channel !== undefined && left > 1) {
    const count = Math.min(i.targetCount, last.matching)
    return {
      thought: `Reach them by ${channel} (${ordered.indexOf(channel) + 1} of ${ordered.length} in the order the goal asks).`,
      next: { _tag: outreach[channel], filter: last.filter, brief: i.goal, count }
    }
  }
  return finish(`${last.matching} contacts match; target the best ${Math.min(i.targetCount, last.matching)} by lead score, channels ${ordered.join(" → ")}.`)
}

/** A brief for the content agent. */
export const brief = (goal: string): Campaign.Brief => ({
  goal,
  tone: /enterprise|executive|cxo/i.test(goal) ? "consultative" : "friendly",
  valueProposition: "cut manual follow-up work in the sales team by automating routine outreach",
  callToAction: /call|meeting|demo/i.test(goal) ? "book a 20-minute call" : "reply to this message"
})

const firstName = (name: string) => name.split(" ")[0] ?? name

/** How the offline model answers an open objection: a sentence for email and calls, a clause for SMS (no claims, no competitors). */
const answers: Readonly<Record<string, { readonly sentence: string; readonly clause: string }>> = {
  price: { sentence: "On price: we can start with a smaller tier and grow from there.", clause: "we can start with a smaller tier" },
  timing: { sentence: "On timing: we can plan the start around your calendar, with no need to decide this quarter.", clause: "we can start when it suits you" },
  "incumbent competitor": { sentence: "On your current tools: we work alongside what you use today, so nothing has to be replaced at once.", clause: "we work alongside your current tools" },
  "security and compliance": { sentence: "On security and compliance: we can walk your team through our security documentation.", clause: "our security documentation is ready for your team" },
  "decision authority": { sentence: "If it helps, I can prepare a short summary for the others who need to decide.", clause: "I can send a summary for the others who decide" },
  integration: { sentence: "On integration: we can map it against your systems in a short technical session.", clause: "we can map the integration with you" }
}
const answerTo = (topic: string) => answers[topic] ?? { sentence: `On ${topic}: I would like to address it directly.`, clause: `happy to talk through ${topic}` }

const met: Readonly<Record<string, string>> = { email: "email", voice: "call", meeting: "meeting", sms: "message" }

const months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
// "2026-11-20" → "20 November" (numeric dates read as phone numbers to the output filter, and to people)
const spoken = (isoDay: string) => {
  const [, m, d] = isoDay.split("-").map(Number)
  return m !== undefined && d !== undefined && months[m - 1] !== undefined ? `${d} ${months[m - 1]}` : isoDay
}

/** What the offline model reads of a contact's assembled context (see `storage/ContactContext`). */
export type KnownFacts = Pick<ContextFacts, "openObjections" | "lastInteraction" | "interests">

/**
 * A personalised message for one contact and channel (with the AI-disclosure line). With
 * `known`, it follows up on the last interaction, answers up to two open objections and
 * names the product the contact is interested in.
 */
export const draft = (contact: Campaign.ContactSnapshot, channel: Campaign.Channel, b: Campaign.Brief, known?: KnownFacts) => {
  const hello = `Hi ${firstName(contact.name)}`
  const product = known?.interests[0]
  const pitch = `teams like ${contact.company}'s in ${contact.industry} use ${product ?? "us"} to ${b.valueProposition}`
  const disclosure = "This message was prepared by an AI assistant on behalf of the sales team."
  const last = known?.lastInteraction ?? null
  const about = last !== null && last.products.length > 0 ? ` about ${last.products.join(" and ")}` : ""
  const whose = last === null ? "" : last.channel === "meeting" || last.channel === "voice" ? "our" : last.direction === "inbound" ? "your" : "my"
  // a meeting's title or an email's subject is quoted; a call's summary may be about anyone, and is not
  const titled = last !== null && (last.channel === "meeting" || last.channel === "email") && last.gist.length > 0 && last.gist.length <= 60
  const title = titled ? ` ("${last.gist.replace(/[.!?…]+$/, "")}")` : ""
  const recap = last === null ? null : `${whose} ${met[last.channel] ?? last.channel} on ${spoken(last.day)}${title}${about}`
  const objections = (known?.openObjections ?? []).slice(0, 2).map(answerTo)
  const nextStep = last !== null && last.nextSteps.length > 0 ? `Next step on our side: ${last.nextSteps[0]}.` : null
  switch (channel) {
    case "email": {
      const opening = [recap === null ? null : `Following up on ${recap}.`, ...objections.map((o) => o.sentence), nextStep].filter((x) => x !== null)
      return {
        subject: product !== undefined ? `${contact.company}: ${product}, ${b.callToAction}?` : `${contact.company}: ${b.callToAction}?`,
        body: `${hello},\n\n${opening.length > 0 ? `${opening.join(" ")}\n\n` : ""}As ${contact.title} you may know the cost of manual outreach: ${pitch}. Would you ${b.callToAction}?\n\n${disclosure}`,
        model: MODEL_NAME
      }
    }
    case "sms": {
      const lead = known === undefined || (product === undefined && objections.length === 0)
        ? `${hello}, ${pitch}.`
        : `${hello}, following up${product !== undefined ? ` on ${product}` : ""}${objections[0] !== undefined ? `: ${objections[0].clause}` : ""}.`
      return { subject: null, body: `${lead} Can we ${b.callToAction}? ${disclosure} Reply STOP to opt out.`, model: MODEL_NAME }
    }
    case "voice": {
      const context = [
        recap === null ? null : `Recap: the last contact was ${recap}.`,
        objections.length > 0 ? `Address: ${objections.map((o) => o.sentence).join(" ")}` : null
      ].filter((x) => x !== null)
      return {
        subject: null,
        body: `Opening: "${hello}, this is an AI assistant calling for the sales team." ${context.length > 0 ? `${context.join(" ")} ` : ""}Pitch: ${pitch}. Ask: ${b.callToAction}.`,
        model: MODEL_NAME
      }
    }
  }
}

const SIGNALS = ["pricing", "demo", "timeline", "budget", "integration"] as const
const OBJECTIONS: ReadonlyArray<readonly [string, RegExp]> = [
  ["price", /too expensive|price is|costly|no budget/],
  ["timing", /timeline is unclear|not now|next quarter|later/],
  ["incumbent", /already use|existing vendor|under contract/],
  ["authority", /not my decision|talk to my|not the right person/],
  ["no-interest", /not interested/]
]

/** Reads sentiment, buying signals and the next step from an outcome. */
export const analyse = (input: {
  readonly outcome: Campaign.DeliveryOutcome
  readonly transcript: string | null
  readonly leadScore: number
}) => {
  const t = (input.transcript ?? "").toLowerCase()
  const buyingSignals = SIGNALS.filter((s) => t.includes(s))
  const negative = /not interested|remove me|stop calling/.test(t)
  const objections = OBJECTIONS.filter(([, re]) => re.test(t)).map(([name]) => name)
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
  return { sentiment, buyingSignals: [...buyingSignals] as Array<string>, objections, nextBestAction, leadStatus, model: MODEL_NAME }
}
