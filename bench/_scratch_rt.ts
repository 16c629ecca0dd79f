import * as InProcess from "./campaign/InProcess.js"
import { percentile } from "./Bench.js"
const n = Number(process.argv[2] ?? 2000)
const s = await InProcess.open()
try {
  console.log("loaded", await s.loadContacts("bench", n))
  const t = Date.now()
  const r = await s.runCampaign({ tenant: "bench", campaignId: "c1", target: n, trace: true, countTraffic: true, timeoutMs: 120_000 })
  console.log(JSON.stringify({ ...r, latenciesMs: undefined, queuedMs: undefined, p50: percentile(r.latenciesMs, 50), p99: percentile(r.latenciesMs, 99), q50: percentile(r.queuedMs, 50), rate: r.completed / r.seconds, cpuPer: r.cpuMs / r.completed, nl: r.latenciesMs.length }, null, 1))
} finally { await s.close() }
process.exit(0)
