/**
 * The output filter of drafted messages, applied before anything is sent. It rewrites
 * what it can and blocks what it cannot, and always says why:
 * - false or unverifiable claims (guarantees, "#1", promised multiples): sentence removed;
 * - competitor mentions: sentence removed;
 * - other people's personal data (emails, phone numbers that are not the recipient's):
 *   redacted; identity or payment numbers (card, SSN): blocked;
 * - a missing AI-disclosure line on AI voice and email: added.
 * A draft left too short to make sense after rewriting is blocked.
 */
import type { Channel, ContactSnapshot } from "../../protocols/Campaign.js"

/** Filter settings. */
export interface FilterSettings {
  /** Competitor names (case-insensitive, whole words). */
  readonly competitors: ReadonlyArray<string>
  /** The disclosure line added where it is missing. */
  readonly disclosure: string
}

/** Default settings. */
export const defaults: FilterSettings = {
  competitors: ["Salesforce", "HubSpot", "Pipedrive", "Zoho", "Salesloft", "Outreach.io", "Close.com"],
  disclosure: "This message was prepared by an AI assistant on behalf of the sales team."
}

/** The filter's verdict with the (possibly rewritten) draft and the reasons. */
export interface Filtered {
  readonly verdict: "pass" | "rewritten" | "blocked"
  readonly subject: string | null
  readonly body: string
  readonly reasons: ReadonlyArray<string>
}

const claims: ReadonlyArray<readonly [string, RegExp]> = [
  ["guarantee", /\bguarantee(d|s)?\b/i],
  ["risk-free", /\brisk[- ]free\b/i],
  ["number-one", /(#\s?1\b|\bnumber one\b|\bno\.\s?1\b)/i],
  ["superlative", /\b(best|leading|only) (solution|platform|product|tool) (in|on) the (world|market)\b/i],
  ["promised-multiple", /\b(double|triple|10x|2x|3x)\b[^.!?]{0,30}\b(revenue|sales|pipeline|leads)\b/i],
  ["absolute-result", /\b100\s?% (success|results?|conversion|guaranteed)\b/i]
]

const hardPii: ReadonlyArray<readonly [string, RegExp]> = [
  ["payment-card", /\b(?:\d[ -]?){13,19}\b/],
  ["ssn", /\b\d{3}-\d{2}-\d{4}\b/]
]

const emailPattern = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g
const phonePattern = /\+?\d[\d ()-]{7,}\d/g
const digits = (s: string) => s.replace(/\D/g, "")

const sentences = (text: string): Array<string> => text.split(/(?<=[.!?])\s+/)

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Filters a draft for `contact` on `channel`. */
export const apply = (
  draft: { readonly subject: string | null; readonly body: string },
  contact: Pick<ContactSnapshot, "email" | "phone">,
  channel: Channel,
  settings: FilterSettings = defaults
): Filtered => {
  const reasons: Array<string> = []
  for (const [name, re] of hardPii) {
    if (re.test(draft.body) || (draft.subject !== null && re.test(draft.subject))) {
      return { verdict: "blocked", subject: draft.subject, body: draft.body, reasons: [`pii:${name}`] }
    }
  }
  const competitor = settings.competitors.map((c) => [c, new RegExp(`\\b${escape(c)}\\b`, "i")] as const)
  const keep = (s: string) => {
    const claim = claims.find(([, re]) => re.test(s))
    if (claim) {
      reasons.push(`false-claim:${claim[0]}`)
      return false
    }
    const rival = competitor.find(([, re]) => re.test(s))
    if (rival) {
      reasons.push(`competitor:${rival[0]}`)
      return false
    }
    return true
  }
  const rewriteText = (text: string) =>
    text
      .split("\n")
      .map((line) => sentences(line).filter(keep).join(" "))
      .join("\n")
  let body = rewriteText(draft.body)
  let subject = draft.subject === null ? null : rewriteText(draft.subject)
  const own = { email: (contact.email ?? "").toLowerCase(), phone: digits(contact.phone ?? "") }
  body = body.replace(emailPattern, (m) => {
    if (m.toLowerCase() === own.email) return m
    reasons.push("pii:other-email")
    return "[removed]"
  })
  body = body.replace(phonePattern, (m) => {
    if (own.phone.length > 0 && digits(m) === own.phone) return m
    reasons.push("pii:other-phone")
    return "[removed]"
  })
  const needsDisclosure = channel === "voice" || channel === "email"
  if (needsDisclosure && !/\bAI\b|artificial intelligence|automated assistant/i.test(body)) {
    reasons.push("ai-disclosure:added")
    body = channel === "voice" ? `${settings.disclosure} ${body}` : `${body.trimEnd()}\n\n${settings.disclosure}`
  }
  if (subject !== null && subject.trim().length === 0) subject = null
  const substance = body.replace(settings.disclosure, "").replace(/\[removed\]/g, "").trim()
  if (substance.length < 20) {
    return { verdict: "blocked", subject, body, reasons: [...new Set([...reasons, "nothing-left-after-rewrite"])] }
  }
  const unique = [...new Set(reasons)]
  return { verdict: unique.length === 0 ? "pass" : "rewritten", subject, body, reasons: unique }
}
