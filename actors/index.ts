/** Public surface of `actors/`: the CRM's actors, agents, model and channels. */
export * as Agents from "./Agents.js"
export * as CampaignActor from "./CampaignActor.js"
export * as Channels from "./Channels.js"
export * as ContactActor from "./ContactActor.js"
export * as CrmApp from "./CrmApp.js"
export * as Model from "./Model.js"
export * as OfflineModel from "./OfflineModel.js"
