/**
 * Runs one in-process campaign for profiling:
 *   node --cpu-prof --cpu-prof-dir=<dir> --import tsx bench/profile.ts [contacts]
 * Prints contacts/s and CPU per contact; the profile covers setup too (filter by time).
 */
import { cpuMs } from "./Bench.js"
import * as InProcess from "./campaign/InProcess.js"

const n = Number(process.argv[2] ?? 2000)
const node = await InProcess.open()
try {
  await node.loadContacts("warm", 200)
  await node.runCampaign({ tenant: "warm", campaignId: "warm-1", target: 200, timeoutMs: 120_000 })
  await node.loadContacts("bench", n)
  const c0 = cpuMs()
  const r = await node.runCampaign({ tenant: "bench", campaignId: "bench-1", target: n, timeoutMs: 600_000, countTraffic: true })
  const cpu = cpuMs() - c0
  console.log(
    `${r.completed} contacts in ${r.seconds.toFixed(1)} s = ${(r.completed / r.seconds).toFixed(1)}/s; ` +
      `CPU ${(r.cpuMs / Math.max(1, r.completed)).toFixed(2)} ms/contact (process ${(cpu / Math.max(1, r.completed)).toFixed(2)}, ` +
      `nats-server ${(r.natsCpuMs / Math.max(1, r.completed)).toFixed(2)}); ` +
      `traffic ${JSON.stringify(r.traffic)}; counters ${JSON.stringify(r.counters)}`
  )
} finally {
  await node.close()
}
process.exit(0)
