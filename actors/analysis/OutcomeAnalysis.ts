/**
 * The per-outcome analysis: sentiment, buying signals, objections, next best action and
 * lead status of one delivery. A call with a transcript is an analysis task (a larger
 * model reads the conversation); an outcome without one is a classification task (a
 * small model, or none needed beyond the offline rules).
 */
import { Effect, Schema } from "effect"
import type { DeliveryOutcome } from "../../protocols/Campaign.js"
import type { TenantId } from "../../protocols/Ids.js"
import * as Trace from "../../protocols/Trace.js"
import { Llm } from "../llm/Llm.js"
import * as Task from "../llm/Task.js"
import * as Offline from "../OfflineModel.js"

/** What the analysis says. */
export const AnalysisOutput = Schema.Struct({
  sentiment: Schema.Literal("positive", "neutral", "negative"),
  buyingSignals: Schema.Array(Schema.String),
  objections: Schema.Array(Schema.String),
  nextBestAction: Schema.String,
  leadStatus: Schema.Literal("qualified", "nurture", "converted", "unqualified")
})
export type AnalysisOutput = typeof AnalysisOutput.Type

/** Input of the analysis. */
export interface AnalysisInput {
  readonly channel: string
  readonly outcome: DeliveryOutcome
  readonly transcript: string | null
  readonly leadScore: number
}

const system =
  "You analyse the outcome of one sales outreach for a CRM: the sentiment, buying signals (pricing, demo, timeline, " +
  "budget, integration…), objections (price, timing, incumbent, authority, no-interest), the next best action, and the " +
  "lead status (converted only when the contact agreed to a meeting or demo)."

const prompt = (i: AnalysisInput) =>
  [`Channel: ${i.channel}. Outcome: ${i.outcome}. Lead score: ${i.leadScore}.`, i.transcript ? `Transcript:\n${i.transcript}` : "No transcript."].join("\n")

const offline = (i: AnalysisInput): AnalysisOutput => {
  const { model: _, ...a } = Offline.analyse(i)
  return a
}

/** Reading a conversation transcript: an analysis task. */
export const transcriptTask = Task.make<AnalysisInput, AnalysisOutput>({
  purpose: "analyse-transcript",
  kind: "analysis",
  output: AnalysisOutput,
  system,
  prompt,
  offline,
  maxTokens: 500,
  temperature: 0
})

/** Classifying an outcome without a conversation: a classification task. */
export const outcomeTask = Task.make<AnalysisInput, AnalysisOutput>({
  purpose: "classify-outcome",
  kind: "classification",
  output: AnalysisOutput,
  system,
  prompt,
  offline,
  maxTokens: 300,
  temperature: 0
})

/** Analyses one outcome; the call is keyed by `callKey` (null: not recorded). */
export const analyse = Effect.fnUntraced(function* (tenant: TenantId, input: AnalysisInput, callKey: string | null) {
  const llm = yield* Llm
  const task = input.transcript !== null && input.transcript.length > 0 ? transcriptTask : outcomeTask
  const answer = yield* llm.run(task, input, { tenant, callKey })
  // Object.assign, not a spread followed by new keys: V8's slow path (see `Message.registry`'s encodeJson)
  return Object.assign({}, answer.value, { model: answer.model, cost: answer.cost })
}, Trace.span("OutcomeAnalysis.analyse", { captureStackTrace: false }))
