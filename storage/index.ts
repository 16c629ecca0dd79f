/** Public surface of `storage/`: the database layers, repositories, the delivery ledger and demo data. */
export * as CampaignRepo from "./CampaignRepo.js"
export * as ContactRepo from "./ContactRepo.js"
export * as Database from "./Database.js"
export * as DeliveryLedger from "./DeliveryLedger.js"
export * as DemoData from "./DemoData.js"
export * as Errors from "./Errors.js"
