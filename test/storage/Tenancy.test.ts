/**
 * Row-level security on a real Postgres server (the PGlite run of the same contract is in
 * `Embedded.test.ts`).
 */
import { layer } from "@effect/vitest"
import { Layer } from "effect"
import * as AuditLog from "../../storage/AuditLog.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Postgres from "../fixtures/Postgres.js"
import { tenancyContract } from "./contracts/TenancyContract.js"

layer(Layer.mergeAll(ContactRepo.layer, AuditLog.layer).pipe(Layer.provideMerge(Postgres.layerFresh)), { excludeTestServices: true })(
  "Tenancy: row-level security (Postgres server)",
  (it) => tenancyContract(it)
)
