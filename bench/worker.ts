/**
 * A runtime node for the scale-out and memory benchmarks: the runtime node of
 * `bin/Launch.ts` (same layers, configured by the same environment: `NATS_URL`,
 * `NEXUS_PREFIX`, `DATABASE_URL`, ...) with the model made to wait `BENCH_MODEL_DELAY_MS`
 * per call (default 0: the offline model as is). Prints `bench-ready` once it consumes, then
 * a `bench-report {json}` line every 500 ms (counters, partitions held, live nodes seen,
 * memory, CPU). SIGTERM drains it.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Schedule } from "effect"
import { logging, runtimeLayer, runtimeNode } from "../bin/Launch.js"
import * as Telemetry from "../bin/Telemetry.js"
import * as DelayedModel from "./campaign/DelayedModel.js"

const delayMs = Number(process.env.BENCH_MODEL_DELAY_MS ?? "0")

const program = Effect.gen(function* () {
  const node = yield* runtimeNode
  const report = Effect.sync(() => {
    const m = process.memoryUsage()
    const cpu = process.cpuUsage()
    const handle = node as unknown as { partitions: ReadonlyArray<number> | (() => ReadonlyArray<number>); liveNodes?: () => ReadonlyArray<string> }
    const owned = typeof handle.partitions === "function" ? handle.partitions() : handle.partitions
    const line = {
      counters: node.counters,
      owned: owned.length,
      liveNodes: handle.liveNodes?.().length ?? 1,
      rssMb: m.rss / 2 ** 20,
      heapMb: m.heapUsed / 2 ** 20,
      cpuMs: (cpu.user + cpu.system) / 1000
    }
    process.stdout.write(`bench-report ${JSON.stringify(line)}\n`)
  })
  process.stdout.write("bench-ready\n")
  yield* report.pipe(Effect.repeat(Schedule.spaced("500 millis")), Effect.forkScoped)
  return yield* Effect.never
})

NodeRuntime.runMain(
  Effect.scoped(program).pipe(
    Effect.provide(delayMs > 0 ? DelayedModel.layer(delayMs) : Layer.empty),
    Effect.provide(runtimeLayer),
    Effect.provide(Telemetry.layer({ serviceName: "nexus-bench-worker" })),
    Effect.provide(logging)
  ) as Effect.Effect<never, unknown>
)
