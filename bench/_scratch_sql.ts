import { ConfigProvider, Effect, Layer, ManagedRuntime } from "effect"
import * as Database from "../storage/Database.js"
import * as DeliveryLedger from "../storage/DeliveryLedger.js"
import * as ContactRepo from "../storage/ContactRepo.js"
import { Ids } from "../protocols/index.js"
import * as Environment from "./campaign/Environment.js"
const db = await Environment.createDatabase()
const rt = ManagedRuntime.make(Layer.mergeAll(DeliveryLedger.layer, ContactRepo.layer).pipe(Layer.provide(Database.layerUrl(db.url))))
try {
  const tenant = Ids.TenantId.make("sql")
  await rt.runPromise(Environment.loadContacts(tenant, 3000))
  const rec = (i: number) => Effect.flatMap(DeliveryLedger.DeliveryLedger, (l) => l.record({ tenantId: tenant, idempotencyKey: `k${i}`, campaignId: Ids.CampaignId.make("c1"), contactId: Ids.ContactId.make(`b-${i}`), channel: "email", recipient: "x@y.example", subject: "s", body: "body ".repeat(40), outcome: "sent", detail: "d", durationSec: 0, transcript: null }))
  await rt.runPromise(Effect.forEach(Array.from({ length: 500 }, (_, i) => i), rec, { concurrency: 32 }))
  const n = 3000
  const c0 = process.cpuUsage(); const t0 = performance.now()
  await rt.runPromise(Effect.forEach(Array.from({ length: n }, (_, i) => i + 1000), rec, { concurrency: 32 }))
  const c = process.cpuUsage(c0)
  console.log(`DeliveryLedger.record: ${(((c.user + c.system) / n)).toFixed(0)} us CPU each, ${(n / ((performance.now() - t0) / 1000)).toFixed(0)}/s`)
  const c1 = process.cpuUsage(); const t1 = performance.now()
  let after: any = null
  for (let i = 0; i < 10; i++) { const w: any = await rt.runPromise(Effect.flatMap(ContactRepo.ContactRepo, (r) => r.window(tenant, {}, after, 256))); after = w.next }
  const cc = process.cpuUsage(c1)
  console.log(`ContactRepo.window(256): ${(((cc.user + cc.system) / 10 / 1000)).toFixed(2)} ms CPU each, ${((performance.now() - t1) / 10).toFixed(1)} ms wall`)
} finally { await rt.dispose(); await Environment.dropDatabase(db) }
process.exit(0)
