/**
 * Worker processes for the scale-out and memory benchmarks: the compiled worker with the
 * node options of production, `node --max-old-space-size=1024 dist/bench/worker.js`, as the
 * Docker image runs `dist/bin/worker.js` (`prepare` builds dist/ first when it is missing
 * or older than the sources), with the run's prefix and database in its environment.
 * `BENCH_WORKERS=tsx` runs them from source instead (`node --import tsx bench/worker.ts`:
 * the TypeScript loader costs a process about 80 MB). Each is waited on until it consumes
 * (`bench-ready`), its `bench-report` lines are kept, and it is stopped by its pid
 * (SIGTERM, then SIGKILL after a grace period).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Dist from "../../bin/Dist.js"
import type { Metrics } from "../../runtime/index.js"
import { log, onAbort } from "../Bench.js"
import { natsUrl, runtimeSettings } from "./Environment.js"

const benchDir = join(dirname(fileURLToPath(import.meta.url)), "..")
const repoDir = join(benchDir, "..")
const fromSource = process.env.BENCH_WORKERS === "tsx"
const compiledWorker = join(Dist.distDir, "bench", "worker.js")

/** Makes sure the compiled worker is there and current: runs `npm run build`'s build when dist/ is missing or stale. */
export const prepare = async (): Promise<void> => {
  if (fromSource || !Dist.stale()) return
  log("workers: building dist/ (npm run build) for the worker processes")
  const result = await Dist.build()
  if (!result.ok) throw new Error(`npm run build failed:\n${result.output.slice(-3000)}`)
  log(`workers: built in ${(result.ms / 1000).toFixed(0)} s`)
}

/** The node arguments of a worker process: the node options of production, and the compiled worker. */
const workerArgs = (): Array<string> => {
  if (fromSource) return [...Dist.nodeOptions, "--import", "tsx", join(benchDir, "worker.ts")]
  if (!existsSync(compiledWorker)) throw new Error("no compiled worker in dist/: call Workers.prepare() first")
  return [...Dist.nodeOptions, compiledWorker]
}

/** One `bench-report` line of a worker. */
export interface Report {
  readonly counters: Metrics.Counters
  /** Partitions the worker holds, and the live nodes it sees. */
  readonly owned: number
  readonly liveNodes: number
  readonly rssMb: number
  readonly heapMb: number
  readonly cpuMs: number
}

/** A running worker. */
export interface Worker {
  readonly pid: number
  readonly name: string
  /** Its last report, if any. */
  readonly last: () => Report | null
  /** Output kept for error messages (the tail). */
  readonly output: () => string
  readonly ready: Promise<void>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  readonly stop: (graceMs?: number) => Promise<void>
}

/** Options of a worker. */
export interface WorkerOptions {
  readonly name: string
  readonly prefix: string
  readonly databaseUrl: string
  /** Model latency per call. Default 0. */
  readonly modelDelayMs?: number
  /** Extra environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Fail `ready` after this long. Default 90 s. */
  readonly readyTimeoutMs?: number
}

/** Spawns a worker. */
export const spawnWorker = (options: WorkerOptions): Worker => {
  const child: ChildProcess = spawn(process.execPath, workerArgs(), {
    cwd: repoDir,
    env: {
      ...process.env,
      ...runtimeSettings,
      LOG_LEVEL: "Error",
      NATS_URL: natsUrl,
      NEXUS_PREFIX: options.prefix,
      NEXUS_NODE_NAME: options.name,
      DATABASE_URL: options.databaseUrl,
      BENCH_MODEL_DELAY_MS: String(options.modelDelayMs ?? 0),
      ...options.env
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let tail = ""
  let last: Report | null = null
  let exited = false
  let resolveReady: () => void = () => {}
  let rejectReady: (e: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  ready.catch(() => undefined)
  const timer = setTimeout(
    () => rejectReady(new Error(`worker ${options.name} not ready after ${(options.readyTimeoutMs ?? 90_000) / 1000} s:\n${tail}`)),
    options.readyTimeoutMs ?? 90_000
  )
  let buffer = ""
  child.stdout!.on("data", (d: Buffer) => {
    buffer += d.toString()
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      if (line === "bench-ready") {
        clearTimeout(timer)
        resolveReady()
      } else if (line.startsWith("bench-report ")) {
        try {
          last = JSON.parse(line.slice("bench-report ".length)) as Report
        } catch {
          // a torn line: the next report comes in a second
        }
      } else tail = (tail + line + "\n").slice(-4000)
    }
  })
  child.stderr!.on("data", (d: Buffer) => void (tail = (tail + d.toString()).slice(-4000)))
  const forget = onAbort(async () => void (exited || child.kill("SIGKILL")))
  const exit = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exited = true
      forget()
      clearTimeout(timer)
      rejectReady(new Error(`worker ${options.name} exited (${code ?? signal}) before it was ready:\n${tail}`))
      resolve()
    })
  )
  return {
    pid: child.pid!,
    name: options.name,
    last: () => last,
    output: () => tail,
    ready,
    stop: async (graceMs = 5_000) => {
      if (exited) return
      child.kill("SIGTERM")
      const killer = setTimeout(() => void (exited || child.kill("SIGKILL")), graceMs)
      await exit
      clearTimeout(killer)
    }
  }
}
