/**
 * What the campaign benchmarks run on: the NATS server of `NATS_URL` under a fresh subject
 * prefix per run (its streams and buckets deleted afterwards), a fresh Postgres database per
 * run on the server of `BENCH_DATABASE_URL` / `TEST_DATABASE_URL` (dropped afterwards), bench
 * contacts that always take the full path (consented, not opted out), and CPU readings of
 * other processes (worker nodes, nats-server) from /proc.
 */
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import type { Campaign } from "../../protocols/index.js"
import { ContactId, type TenantId } from "../../protocols/Ids.js"
import { hash32 } from "../../protocols/Subjects.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import * as DemoData from "../../storage/DemoData.js"

/** The NATS server every benchmark talks to. */
export const natsUrl: string = (process.env.NATS_URL ?? "nats://127.0.0.1:4222").split(",")[0]!.trim()

/** The maintenance database used to create and drop bench databases. */
export const adminDatabaseUrl: string =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

/** A fresh subject prefix: `bn` + 9 random lowercase letters and digits. */
export const freshPrefix = (): string => "bn" + Array.from(randomBytes(9), (b) => ALPHABET[b % ALPHABET.length]).join("")

/** Stream name stem of a prefix (as `Subjects.make` derives it). */
const streamStem = (prefix: string) => prefix.toUpperCase().replace(/[^A-Z0-9_]/g, "_")

/**
 * Deletes every stream and KV bucket of a prefix: streams `<PREFIX>_*` and buckets
 * `<prefix>-*` (whatever the topology holds today), with their consumers.
 */
export const destroyPrefix = async (prefix: string): Promise<number> => {
  const nc = await connect({ servers: natsUrl, name: `bench-cleanup-${prefix}`, noAsyncTraces: true })
  try {
    const jsm = await jetstreamManager(nc)
    const names: Array<string> = []
    for await (const name of jsm.streams.names()) names.push(name)
    const mine = names.filter((n) => n.startsWith(`${streamStem(prefix)}_`) || n.startsWith(`KV_${prefix}-`))
    await Promise.all(mine.map((n) => jsm.streams.delete(n).catch(() => false)))
    return mine.length
  } finally {
    await nc.close()
  }
}

/** A database created for one run. */
export interface FreshDatabase {
  readonly name: string
  readonly url: string
}

const urlOf = (name: string): string => {
  const url = new URL(adminDatabaseUrl)
  url.pathname = `/${name}`
  return url.toString()
}

const admin = (statement: string): Promise<void> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(statement)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(adminDatabaseUrl), maxConnections: 1 })), Effect.scoped)
  )

/** Creates an empty database `nexus_bench_<random>` (the runtime migrates it on connect). */
export const createDatabase = async (): Promise<FreshDatabase> => {
  const name = `nexus_bench_${randomBytes(6).toString("hex")}`
  await admin(`CREATE DATABASE ${name}`)
  return { name, url: urlOf(name) }
}

/** Drops a bench database, closing whatever connections are left on it. */
export const dropDatabase = (db: FreshDatabase): Promise<void> =>
  admin(`DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`).catch((e) => {
    process.stderr.write(`could not drop bench database ${db.name}: ${e}\n`)
  })

/**
 * Bench contact `i` of a tenant: deterministic, consented on every channel, not opted out,
 * with an email and a phone, so every contact takes the whole path (lock, content, delivery,
 * analysis) and the runtime does the same work per contact as the baseline.
 */
export const contact = (tenant: string, i: number): Campaign.ContactSnapshot => {
  const h = hash32(`${tenant}/${i}`)
  const region = DemoData.regions[h % DemoData.regions.length]!
  const industry = DemoData.industries[(h >>> 4) % DemoData.industries.length]!
  const role = DemoData.titles[(h >>> 8) % DemoData.titles.length]!
  const company = `Bench ${industry.suffixes[(h >>> 12) % industry.suffixes.length]} ${i % 997}`
  return {
    id: ContactId.make(`b-${String(i).padStart(7, "0")}`),
    name: `Contact ${i}`,
    email: `contact.${i}@bench-${i % 997}.example`,
    phone: `${region.dial}01${String(i % 100_000).padStart(5, "0")}`,
    company,
    title: role.title,
    industry: industry.name,
    segment: (["enterprise", "mid-market", "smb"] as const)[(h >>> 16) % 3]!,
    region: region.name,
    timezone: region.timezones[(h >>> 20) % region.timezones.length]!,
    leadScore: (h >>> 3) % 101,
    optedOut: false,
    consent: { voice: true, email: true, sms: true }
  }
}

/** Writes contacts 1..n of `tenant` in chunks (so a million never sit in memory at once). */
export const loadContacts = (tenant: TenantId, n: number, chunk = 20_000) =>
  Effect.gen(function* () {
    const repo = yield* ContactRepo
    let written = 0
    for (let from = 1; from <= n; from += chunk) {
      const to = Math.min(n, from + chunk - 1)
      const batch: Array<Campaign.ContactSnapshot> = []
      for (let i = from; i <= to; i++) batch.push(contact(tenant, i))
      written += yield* repo.insertMany(tenant, batch)
    }
    return written
  })

/**
 * Settings every benchmarked node runs with (in-process through a `ConfigProvider`, workers
 * through their environment): the offline model and sandbox channels whatever keys the
 * environment holds, and no quiet hours, so that a run at any hour of the day measures the
 * same work instead of deferring contacts to their morning.
 */
export const runtimeSettings: Readonly<Record<string, string>> = {
  LLM_PROVIDER: "offline",
  CHANNELS: "sandbox",
  NEXUS_EMBEDDINGS: "offline",
  QUIET_HOURS_EMAIL: "off",
  QUIET_HOURS_SMS: "off",
  QUIET_HOURS_VOICE: "off"
}

/** A goal the offline planner reads as "everyone, email first" (no segment or score filter). */
export const goal = "email the spring release note to every contact"

/** CPU time (user + system) of a process in ms, from /proc; null when it cannot be read. */
export const processCpuMs = (pid: number): number | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields[11], fields[12]: utime, stime in clock ticks (USER_HZ, 100 on Linux)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return null
  }
}

/** Resident set size now and at its peak (VmRSS, VmHWM) of a process in MB, from /proc. */
export const processRssMb = (pid: number): { rss: number; peak: number } | null => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN)
    return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 }
  } catch {
    return null
  }
}

/** Busy CPU time of the whole machine in ms (all cores), from /proc/stat. */
export const machineBusyMs = (): number | null => {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    const busy = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0)
    return (busy * 1000) / 100
  } catch {
    return null
  }
}

/** Pids of the processes named `name` on this machine (those /proc lets us read). */
export const pidsNamed = (name: string): Array<number> => {
  const out: Array<number> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) out.push(Number(entry))
    } catch {
      // gone, or not ours to read
    }
  }
  return out
}

/**
 * The pid of the nats-server behind `natsUrl`, if it runs on this machine and can be told
 * apart (its command line names the port, or it is the only nats-server); null otherwise.
 */
export const natsServerPid = (): number | null => {
  const port = new URL(natsUrl.replace(/^nats:/, "http:")).port || "4222"
  const found: Array<{ pid: number; args: string }> = []
  for (const pid of pidsNamed("nats-server")) {
    try {
      found.push({ pid, args: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ") })
    } catch {
      // gone
    }
  }
  const byPort = found.filter((p) => new RegExp(`(-p|--port)[ =]${port}\\b`).test(p.args))
  if (byPort.length === 1) return byPort[0]!.pid
  return found.length === 1 ? found[0]!.pid : null
}

/**
 * CPU of groups of processes over an interval, as cores used; also the whole machine's. A
 * group is a list of pids, or a function that lists them (read again at every sample: a
 * database's backends come and go). Samples every 200 ms: a process that exits counts what
 * it used until its last sample, one that starts counts from zero.
 */
export const cpuMeter = (groups: ReadonlyArray<ReadonlyArray<number> | (() => ReadonlyArray<number>)>) => {
  const t0 = performance.now()
  const list = (g: ReadonlyArray<number> | (() => ReadonlyArray<number>)) => (typeof g === "function" ? g() : g)
  // per group: each pid's CPU when first and last seen
  const seen = groups.map(() => new Map<number, { first: number; last: number }>())
  const sample = (initial: boolean) =>
    groups.forEach((g, i) => {
      for (const pid of list(g)) {
        const ms = processCpuMs(pid)
        if (ms === null) continue
        const known = seen[i]!.get(pid)
        if (known === undefined) seen[i]!.set(pid, { first: initial ? ms : 0, last: ms })
        else known.last = ms
      }
    })
  sample(true)
  const machine0 = machineBusyMs()
  const timer = setInterval(() => sample(false), 200)
  timer.unref()
  return () => {
    clearInterval(timer)
    sample(false)
    const elapsed = performance.now() - t0
    const cores = groups.map((g, i) =>
      typeof g !== "function" && g.length === 0 ? Number.NaN : [...seen[i]!.values()].reduce((a, p) => a + p.last - p.first, 0) / elapsed
    )
    const machine1 = machineBusyMs()
    return { elapsedMs: elapsed, cores, machineCores: machine0 === null || machine1 === null ? Number.NaN : (machine1 - machine0) / elapsed }
  }
}
