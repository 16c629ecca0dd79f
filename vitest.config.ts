import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "**/*.test.ts"],
    exclude: ["node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites share one NATS server and one Postgres; each suite isolates itself
    // with its own subject prefix and database, so files may run in parallel.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    pool: "forks"
  }
})
