/**
 * The CRM application as the runtime runs it: every message type, the actors, the agents,
 * how commands reach actors, and the service layers they need (chosen by configuration:
 * offline model and sandbox channels by default).
 */
import { Layer } from "effect"
import type { ConfigError } from "effect/ConfigError"
import { Deployment } from "../nats/index.js"
import { Address, Campaign, Control, DeadLetter, Dispatch, Inbound, Message, Planner, Vapi } from "../protocols/index.js"
import { Locks, Node } from "../runtime/index.js"
import * as ActionLedger from "../storage/ActionLedger.js"
import * as AttemptLedger from "../storage/AttemptLedger.js"
import * as CampaignRepo from "../storage/CampaignRepo.js"
import * as ContactRepo from "../storage/ContactRepo.js"
import * as Database from "../storage/Database.js"
import * as DeliveryLedger from "../storage/DeliveryLedger.js"
import * as KnowledgeStore from "../storage/Knowledge.js"
import * as LlmCallLedger from "../storage/LlmCallLedger.js"
import * as Agents from "./Agents.js"
import * as TenantBudget from "./TenantBudget.js"
import { CampaignActor, addressOf } from "./CampaignActor.js"
import type * as Channels from "./Channels.js"
import * as ChannelsConfig from "./channels/ChannelsConfig.js"
import { ContactActor } from "./ContactActor.js"
import * as DispatchPolicy from "./guardrails/DispatchPolicy.js"
import * as IngestAgent from "./IngestAgent.js"
import type { Llm } from "./llm/Llm.js"
import * as Model from "./Model.js"
import * as Knowledge from "./planner/Knowledge.js"
import * as PlannerKnowledge from "./planner/KnowledgeStore.js"

/** Every message type on the wire. */
export const registry = Message.registry([
  ...Campaign.all,
  ...Control.all,
  ...Planner.all,
  ...Dispatch.all,
  ...Vapi.all,
  ...Inbound.all,
  DeadLetter.DeadLettered
])

/** Commands external systems may send, and the actor (or agent) each goes to. */
export const commands: ReadonlyArray<Node.CommandRoute> = [
  { command: Campaign.StartCampaign, to: (p: Campaign.StartPayload) => addressOf(p.campaignId) },
  ...Control.commands.map((command) => ({ command, to: (p: { campaignId: string }) => addressOf(p.campaignId) })),
  { command: Dispatch.ContactInbound, to: (p: { contactId: string }) => Address.actor("contact", p.contactId) },
  // Vapi webhook outcomes: resolved to their contact by the call-events agent
  ...Vapi.all.map((command) => ({ command, to: () => Address.agent(Agents.callEvents.name) })),
  // external events for the knowledge store: to the ingest agent
  ...IngestAgent.routes
]

/** Every service the CRM's actors and agents use. */
export type Services =
  | ContactRepo.ContactRepo
  | CampaignRepo.CampaignRepo
  | DeliveryLedger.DeliveryLedger
  | AttemptLedger.AttemptLedger
  | ActionLedger.ActionLedger
  | LlmCallLedger.LlmCallLedger
  | Channels.Channels
  | Llm
  | Knowledge.Knowledge
  | DispatchPolicy.DispatchPolicy
  | KnowledgeStore.Services
  | Locks.Locks
  | TenantBudget.TenantBudget

/** What a full node runs. */
export const nodeOptions: Node.NodeOptions<Services> = {
  registry,
  actors: [CampaignActor, ContactActor],
  agents: [...Agents.all, IngestAgent.ingest],
  commands
}

/** Repositories and ledgers over a database layer. */
export const repositories = Layer.mergeAll(
  ContactRepo.layer,
  CampaignRepo.layer,
  DeliveryLedger.layer,
  AttemptLedger.layer,
  ActionLedger.layer,
  LlmCallLedger.layer
)

/** Layers that replace the configured ones (tests, demos). */
export interface Overrides {
  readonly channels?: Layer.Layer<Channels.Channels, never, DeliveryLedger.DeliveryLedger | AttemptLedger.AttemptLedger>
  readonly model?: Layer.Layer<Llm, never, LlmCallLedger.LlmCallLedger>
  readonly policy?: Layer.Layer<DispatchPolicy.DispatchPolicy>
}

/**
 * Everything the actors and agents need, over a database layer and the NATS deployment:
 * repositories, locks, the model stack (`Model.layer`: offline unless a provider key is
 * set), the channels (`CHANNELS`: sandbox unless live), the dispatch guardrails (quiet
 * hours, do-not-contact list), the knowledge store and the planner's knowledge port over
 * it. `overrides` replaces any of the configured layers.
 */
export const services = <E, R>(database: Layer.Layer<Database.Database, E, R>, overrides: Overrides = {}) => {
  // the knowledge store (records, memory, graph, vectors; backends chosen by configuration)
  // shares the one database build with the repositories
  const repos = KnowledgeStore.layer.pipe(Layer.provideMerge(repositories), Layer.provide(database))
  const channels: Layer.Layer<Channels.Channels, ConfigError, DeliveryLedger.DeliveryLedger | AttemptLedger.AttemptLedger> =
    overrides.channels ?? ChannelsConfig.layer
  const model: Layer.Layer<Llm, ConfigError, LlmCallLedger.LlmCallLedger> = overrides.model ?? Model.layer
  return Layer.mergeAll(
    repos,
    channels.pipe(Layer.provide(repos)),
    model.pipe(Layer.provide(repos)),
    // the planner's knowledge port over the store; offline answers for what it has not ingested
    PlannerKnowledge.layerStore.pipe(Layer.provide(repos)),
    overrides.policy ?? DispatchPolicy.layer,
    Locks.layer,
    TenantBudget.layer
  )
}

/** The NATS side from the environment (connection, config, provisioned topology). */
export const natsFromEnv = Deployment.layerFromEnv
