/**
 * The CRM application as the runtime runs it: every message type, the actors, the agents,
 * how commands reach actors, and the service layers they need (chosen by configuration:
 * offline model and sandbox channels by default).
 */
import { Layer } from "effect"
import { Deployment } from "../nats/index.js"
import { Campaign, Control, DeadLetter, Message } from "../protocols/index.js"
import { Locks, Node } from "../runtime/index.js"
import * as CampaignRepo from "../storage/CampaignRepo.js"
import * as ContactRepo from "../storage/ContactRepo.js"
import * as Database from "../storage/Database.js"
import * as DeliveryLedger from "../storage/DeliveryLedger.js"
import * as Agents from "./Agents.js"
import { CampaignActor, addressOf } from "./CampaignActor.js"
import * as Channels from "./Channels.js"
import { ContactActor } from "./ContactActor.js"
import * as Model from "./Model.js"

/** Every message type on the wire. */
export const registry = Message.registry([...Campaign.all, ...Control.all, DeadLetter.DeadLettered])

/** Commands external systems may send, and the actor each goes to. */
export const commands: ReadonlyArray<Node.CommandRoute> = [
  { command: Campaign.StartCampaign, to: (p: Campaign.StartPayload) => addressOf(p.campaignId) },
  ...Control.commands.map((command) => ({ command, to: (p: { campaignId: string }) => addressOf(p.campaignId) }))
]

/** Every service the CRM's actors and agents use. */
export type Services =
  | ContactRepo.ContactRepo
  | CampaignRepo.CampaignRepo
  | DeliveryLedger.DeliveryLedger
  | Channels.Channels
  | Model.Model
  | Locks.Locks

/** What a full node runs. */
export const nodeOptions: Node.NodeOptions<Services> = {
  registry,
  actors: [CampaignActor, ContactActor],
  agents: Agents.all,
  commands
}

/** Repositories over a database layer. */
export const repositories = Layer.mergeAll(ContactRepo.layer, CampaignRepo.layer, DeliveryLedger.layer)

/**
 * Everything the actors and agents need, over a database layer and the NATS deployment:
 * repositories, locks, the model and the channels.
 */
export const services = <E, R>(database: Layer.Layer<Database.Database, E, R>) => {
  const repos = repositories.pipe(Layer.provide(database))
  return Layer.mergeAll(
    repos,
    Channels.layerSandbox.pipe(Layer.provide(repos)),
    Model.layerOffline,
    Locks.layer
  )
}

/** The NATS side from the environment (connection, config, provisioned topology). */
export const natsFromEnv = Deployment.layerFromEnv
