/**
 * The language-model port the agents use: planning steps, drafts and analyses. The
 * offline layer is the default (and the one tests use); provider layers (OpenAI,
 * Anthropic) plug in here, chosen by configuration.
 */
import { Context, Effect, Layer } from "effect"
import type { Campaign } from "../protocols/index.js"
import * as Offline from "./OfflineModel.js"

/** What the agents ask of a model. */
export interface ModelService {
  /** Model name, recorded on every output. */
  readonly name: string
  readonly nextPlanStep: (
    goal: string,
    requested: Campaign.AudienceFilter,
    channels: ReadonlyArray<Campaign.Channel>,
    target: number,
    observations: ReadonlyArray<Offline.Observation>
  ) => Effect.Effect<Offline.PlanStep>
  readonly brief: (goal: string) => Effect.Effect<Campaign.Brief>
  readonly draft: (
    contact: Campaign.ContactSnapshot,
    channel: Campaign.Channel,
    brief: Campaign.Brief
  ) => Effect.Effect<{ subject: string | null; body: string; model: string }>
  readonly analyse: (input: {
    readonly outcome: Campaign.DeliveryOutcome
    readonly transcript: string | null
    readonly leadScore: number
  }) => Effect.Effect<ReturnType<typeof Offline.analyse>>
}

/** The model service. */
export class Model extends Context.Tag("nexus/Model")<Model, ModelService>() {}

/** The deterministic offline model (`offline-v1`). */
export const layerOffline: Layer.Layer<Model> = Layer.succeed(Model, {
  name: Offline.MODEL_NAME,
  nextPlanStep: (...args) => Effect.sync(() => Offline.nextPlanStep(...args)),
  brief: (goal) => Effect.sync(() => Offline.brief(goal)),
  draft: (contact, channel, brief) => Effect.sync(() => Offline.draft(contact, channel, brief)),
  analyse: (input) => Effect.sync(() => Offline.analyse(input))
})
