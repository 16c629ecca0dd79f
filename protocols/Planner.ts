/**
 * The planner's ReAct loop on the wire: each step (thought → action → observation) is
 * one message to the planner agent, so every step is durable, its model call recorded,
 * and streamed as an `event.planner-step` on the campaign's topic (the dashboard shows
 * the reasoning live). The action set itself is typed in actors/planner/Actions.ts; here
 * an action travels as its tag and its JSON input. The workflow-control actions are typed
 * here, because they travel to the campaign actor: the planner asks, the campaign actor
 * puts the request through its approval gate and applies it once a person approved.
 */
import { Schema } from "effect"
import { AudienceFilter, PlanRequested } from "./Campaign.js"
import { Cost } from "./Cost.js"
import { CampaignId } from "./Ids.js"
import * as Message from "./Message.js"

/** What became of a step's action. */
export const StepStatus = Schema.Literal(
  /** A read-only action ran; its observation is recorded. */
  "observed",
  /** An outreach action was taken into the plan (it runs when the campaign dispatches). */
  "proposed",
  /** A CRM write ran (once per step, recorded in the action ledger); its result is recorded. */
  "executed",
  /** A destructive or high-risk action: it waits for a person's approval. */
  "needs-confirmation",
  /** The action was refused (invalid input, not allowed in planning). */
  "refused",
  /** The model finished with a plan. */
  "finished"
)
export type StepStatus = typeof StepStatus.Type

/** One recorded ReAct step. */
export const PlanStep = Schema.Struct({
  step: Schema.Int.pipe(Schema.nonNegative()),
  thought: Schema.String,
  action: Schema.String,
  input: Schema.Unknown,
  observation: Schema.String,
  /** Small structured form of the observation (counts, ids), for the next decision. */
  data: Schema.Unknown,
  status: StepStatus,
  model: Schema.String
})
export type PlanStep = typeof PlanStep.Type

const Reason = Schema.String.pipe(Schema.maxLength(2000))

/** Workflow control: pause the campaign. */
export const PauseCampaignAction = Schema.TaggedStruct("pause_campaign", { reason: Reason })
/** Workflow control: change the priority of contacts of running work (their contact-lock priority). */
export const AdjustPriorityAction = Schema.TaggedStruct("adjust_priority", {
  filter: AudienceFilter,
  priority: Schema.Literal("low", "normal", "high")
})
/** Workflow control: hand a decision to a person. */
export const EscalateAction = Schema.TaggedStruct("escalate", { reason: Reason, to: Schema.String })
/** A workflow-control action. */
export const WorkflowAction = Schema.Union(PauseCampaignAction, AdjustPriorityAction, EscalateAction)
export type WorkflowAction = typeof WorkflowAction.Type

/**
 * Planner → campaign actor: a workflow-control action the planner took. It changes running
 * work, so the campaign actor asks for approval (`event.approval-requested` with this
 * approval id) and applies it only when approved; a repeat of the same approval id
 * changes nothing.
 */
export const ControlRequested = Message.define(
  "planner.control-requested",
  Schema.Struct({
    campaignId: CampaignId,
    /** Deterministic, from the planner step: `<campaignId>-step<n>-<action>`. */
    approvalId: Schema.String,
    step: Schema.Int.pipe(Schema.nonNegative()),
    action: WorkflowAction,
    reason: Schema.String
  }),
  { description: "A workflow-control action of the planner (pause, adjust priority, escalate), waiting for approval." }
)

/** Planner → planner: take the next step (the loop's state travels in the message). */
export const PlanStepRequested = Message.define(
  "planner.step-requested",
  Schema.Struct({
    request: PlanRequested.payload,
    /** The campaign actor that asked, where the plan goes. */
    replyTo: Schema.String,
    steps: Schema.Array(PlanStep),
    cost: Cost
  }),
  { description: "The planner's next ReAct step, with the steps taken so far." }
)

/** Event: one planner step, as it happened. */
export const PlannerStepRecorded = Message.define(
  "event.planner-step",
  Schema.Struct({ campaignId: CampaignId, step: PlanStep, maxSteps: Schema.Int, cost: Cost }),
  { description: "One ReAct step of the planner (thought, action, observation), streamed for the dashboard." }
)

/** Every planner message. */
export const all: ReadonlyArray<Message.MessageType> = [PlanStepRequested, PlannerStepRecorded, ControlRequested]
