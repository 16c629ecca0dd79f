/**
 * Extracting entities from an interaction's text: products mentioned, objections raised or
 * resolved, agreed next steps. The port lets a model-backed extractor plug in (from
 * `actors/`); the layer here, **offline-rules-v1**, is deterministic keyword rules over
 * sentences, good enough for the demo and tests and free of any model call.
 */
import { Config, Context, Effect, Layer } from "effect"
import type { Entities, Objection } from "./Episode.js"

/** The entity extractor. */
export interface EntityExtractorShape {
  /** Name recorded with what it extracts. */
  readonly name: string
  readonly extract: (text: string) => Effect.Effect<Entities>
}

/** The entity extractor service. */
export class EntityExtractor extends Context.Tag("nexus/storage/EntityExtractor")<EntityExtractor, EntityExtractorShape>() {}

/** Name of the rule-based extractor. */
export const RULES_NAME = "offline-rules-v1"

/** Products the demo tenant sells (`NEXUS_PRODUCT_CATALOG`, comma-separated, overrides). */
export const defaultCatalog: ReadonlyArray<string> = [
  "Nexus CRM", "Nexus Voice", "Nexus Analytics", "Nexus Sequences", "Nexus API", "Enterprise Plan", "Starter Plan"
]

/** Objection topics and the phrases that raise them. */
export const objectionRules: ReadonlyArray<readonly [topic: string, pattern: RegExp]> = [
  ["price", /\b(too expensive|pricey|price (is|seems) (too )?high|over (our |the )?budget|no budget|can'?t afford|cost(s)? too much|pricing)\b/i],
  ["timing", /\b(not the right time|bad timing|next quarter|next year|too busy|revisit (this )?later|not a priority)\b/i],
  ["incumbent competitor", /\b(already (use|using|have|signed)|locked in|under contract|competitor|happy with our current)\b/i],
  ["security and compliance", /\b(security|compliance|gdpr|soc ?2|hipaa|data privacy|data residency)\b/i],
  ["decision authority", /\b(not my decision|need to (ask|check with|run it by)|my (boss|manager|cfo|ceo)|the board)\b/i],
  ["integration", /\b(integrat(e|es|ion|ions)|doesn'?t work with|compatib(le|ility)|migration effort)\b/i]
]

/** Phrases that mark an objection in the same sentence as resolved. */
const resolvedPattern = /\b(resolved|addressed|no longer (a |an )?(concern|issue|problem)|not an issue anymore|that works( for us)?|makes sense now|we are fine with|cleared up|sorted out)\b/i

/** Next steps and the phrases that agree them. */
export const nextStepRules: ReadonlyArray<readonly [step: string, pattern: RegExp]> = [
  ["send proposal", /\b(send|share|email) (over )?(a |the |our )?(proposal|quote|pricing)\b/i],
  ["schedule demo", /\b(schedule|book|set up|arrange) (a |the )?(product )?demo\b/i],
  ["schedule follow-up call", /\b(schedule|book|set up|arrange) (a |another )?(follow[- ]up|call|meeting)\b/i],
  ["start trial", /\b(start|begin|set up|kick off) (a |the )?(free )?(trial|pilot|proof of concept|poc)\b/i],
  ["send contract", /\b(send|share) (over )?(the |a )?(contract|msa|order form)\b/i],
  ["follow up", /\b(follow up|get back to (you|me|us)|circle back|touch base)\b/i]
]

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** The rule-based extraction of one text (deterministic). */
export const extractWithRules = (text: string, catalog: ReadonlyArray<string> = defaultCatalog): Entities => {
  const products = catalog.filter((p) => new RegExp(`\\b${escape(p)}\\b`, "i").test(text))
  const status = new Map<string, Objection["status"]>()
  const steps: Array<string> = []
  for (const sentence of text.split(/(?<=[.!?])\s+|\n+/)) {
    const resolved = resolvedPattern.test(sentence)
    for (const [topic, pattern] of objectionRules) {
      if (pattern.test(sentence)) status.set(topic, resolved ? "resolved" : "raised")
    }
    for (const [step, pattern] of nextStepRules) {
      if (pattern.test(sentence) && !steps.includes(step)) steps.push(step)
    }
  }
  return {
    products,
    objections: [...status.entries()].map(([topic, s]) => ({ topic, status: s })),
    nextSteps: steps
  }
}

/** The rule-based extractor over a product catalog. */
export const layerRulesWith = (catalog: ReadonlyArray<string>): Layer.Layer<EntityExtractor> =>
  Layer.succeed(EntityExtractor, {
    name: RULES_NAME,
    extract: (text) => Effect.sync(() => extractWithRules(text, catalog))
  })

/** The rule-based extractor with the catalog of the environment (`NEXUS_PRODUCT_CATALOG`). */
export const layerRules: Layer.Layer<EntityExtractor> = Layer.unwrapEffect(
  Effect.map(
    Config.string("NEXUS_PRODUCT_CATALOG").pipe(
      Config.map((s) => s.split(",").map((p) => p.trim()).filter((p) => p.length > 0)),
      Config.withDefault(defaultCatalog),
      Config.withDescription("Comma-separated product names the rule-based extractor looks for")
    ),
    layerRulesWith
  ).pipe(Effect.orElseSucceed(() => layerRulesWith(defaultCatalog)))
)
