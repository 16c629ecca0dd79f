/**
 * `npm run bench`: runs every suite in `bench/suites/` (each file default-exports a
 * `Suite`), in file-name order, prints one table and writes the rows as JSON to
 * `bench/results/<timestamp>.json`. A suite that fails or times out becomes a row with its
 * error; the others still run.
 *
 *   npm run bench                    default sizes (under 5 minutes on 2 cores)
 *   npm run bench -- --full          large sizes (about 45 minutes on 2 cores; most of it is
 *                                    the 1,000,000-contact campaign of the memory figure)
 *   npm run bench -- --only campaign one suite (by name or file name)
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs"
import os from "node:os"
import { basename, dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { abortAll, log, type Row, type Suite } from "./Bench.js"

const here = dirname(fileURLToPath(import.meta.url))

const { values } = parseArgs({
  options: {
    full: { type: "boolean", default: false },
    only: { type: "string" },
    "suite-timeout": { type: "string" }
  }
})
const full = values.full === true
const only = values.only
const suiteTimeoutMs = Number(values["suite-timeout"] ?? (full ? 4 * 3600 : 10 * 60)) * 1000

interface SuiteResult {
  readonly name: string
  readonly file: string
  readonly durationMs: number
  readonly error: string | null
  readonly rows: ReadonlyArray<Row>
}

const errorRow = (name: string, error: unknown): Row => ({
  figure: `${name}: suite failed: ${error instanceof Error ? error.message : String(error)}`.replace(/\s+/g, " ").slice(0, 300),
  value: Number.NaN,
  unit: "",
  baseline: null,
  ratio: null,
  target: "-",
  met: false
})

const isSuite = (u: unknown): u is Suite =>
  typeof u === "object" && u !== null && typeof (u as Suite).name === "string" && typeof (u as Suite).run === "function"

const withTimeout = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms)
    p.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })

const suiteFiles = (): Array<string> =>
  readdirSync(join(here, "suites"))
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith(".d.ts") && !/\.test\.[jt]s$/.test(f))
    .sort()
    .map((f) => join(here, "suites", f))

const fmt = (n: number | null): string => {
  if (n === null) return "-"
  if (!Number.isFinite(n)) return "n/a"
  const a = Math.abs(n)
  if (a === 0) return "0"
  if (a >= 1000) return Math.round(n).toLocaleString("en-US")
  if (a >= 100) return n.toFixed(0)
  if (a >= 10) return n.toFixed(1)
  if (a >= 0.1) return n.toFixed(2)
  return n.toPrecision(2)
}

const table = (rows: ReadonlyArray<Row>): string => {
  const header = ["figure", "value", "baseline", "ratio", "target", "met"]
  const body = rows.map((r) => [
    r.figure,
    `${fmt(r.value)}${r.unit && Number.isFinite(r.value) ? ` ${r.unit}` : ""}`,
    r.baseline === null ? "-" : `${fmt(r.baseline)}${r.unit ? ` ${r.unit}` : ""}`,
    r.ratio === null ? "-" : `${fmt(r.ratio)}x`,
    r.target,
    r.met === null ? "-" : r.met ? "yes" : "NO"
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 1 || i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

// an interrupted run still deletes what it created (streams, databases, worker processes)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`)
    abortAll().finally(() => process.exit(130))
  })
}

const main = async () => {
  const startedAt = new Date()
  const files = suiteFiles()
  const results: Array<SuiteResult> = []
  let failures = 0
  let matched = 0
  for (const file of files) {
    const fileName = basename(file).replace(/\.[^.]+$/, "")
    const t0 = Date.now()
    let name = fileName
    let suite: Suite
    try {
      const mod = (await import(pathToFileURL(file).href)) as { default?: unknown }
      if (!isSuite(mod.default)) throw new Error(`${basename(file)} does not default-export a Suite`)
      suite = mod.default
      name = suite.name
    } catch (e) {
      if (only !== undefined && only.toLowerCase() !== fileName.toLowerCase()) continue
      matched++
      failures++
      log(`suite ${name}: cannot be loaded: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      results.push({ name, file: basename(file), durationMs: 0, error: e instanceof Error ? e.message : String(e), rows: [errorRow(name, e)] })
      continue
    }
    if (only !== undefined && ![fileName, name].some((n) => n.toLowerCase() === only.toLowerCase())) continue
    matched++
    try {
      log(`suite ${name}: running (${full ? "full" : "default"} sizes)`)
      const rows = await withTimeout(suite.run({ full }), suiteTimeoutMs, `suite ${name}`)
      results.push({ name, file: basename(file), durationMs: Date.now() - t0, error: null, rows })
      log(`suite ${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    } catch (e) {
      failures++
      log(`suite ${name}: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      await abortAll()
      results.push({
        name,
        file: basename(file),
        durationMs: Date.now() - t0,
        error: e instanceof Error ? e.message : String(e),
        rows: [errorRow(name, e)]
      })
    }
  }
  if (only !== undefined && matched === 0) {
    console.error(`no suite named '${only}' in bench/suites (have: ${files.map((f) => basename(f)).join(", ")})`)
    process.exit(2)
  }

  const rows = results.flatMap((r) => r.rows)
  console.log(`\nnexus bench ${full ? "--full " : ""}(${os.cpus().length} CPUs, node ${process.version}), ${startedAt.toISOString()}\n`)
  console.log(table(rows))

  const finishedAt = new Date()
  const dir = join(here, "results")
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        options: { full, only: only ?? null },
        machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryMb: Math.round(os.totalmem() / 2 ** 20), node: process.version },
        suites: results
      },
      null,
      2
    ) + "\n"
  )
  console.log(`\n${rows.length} figures in ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s; written to bench/results/${basename(file)}`)
  // a suite may leave a timer or socket behind; the results are written, so leave now
  process.exit(failures > 0 ? 1 : 0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
