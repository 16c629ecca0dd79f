/**
 * The build of `npm run build`: the sources compiled to JavaScript in `dist/` by `tsc -p
 * tsconfig.build.json`, and the files the gateway serves as they are (its dashboard) copied
 * next to the compiled gateway. Production processes run the compiled entry points (`node
 * dist/bin/worker.js`, `node dist/bin/gateway.js`; the Docker image does): no TypeScript
 * loader in the process, which saves a runtime node about 80 MB of resident memory (the
 * loader's thread, and transformed sources with their source maps held in the heap).
 *
 * `stale` says whether `dist/` is missing or older than a source, for tools that run the
 * compiled code from a working tree (the benchmarks' worker processes).
 */
import { spawn } from "node:child_process"
import { cpSync, existsSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository: this file is `bin/Dist.ts`, or `dist/bin/Dist.js` once compiled. */
export const repoDir: string = join(dirname(fileURLToPath(import.meta.url)), import.meta.url.endsWith(".ts") ? ".." : "../..")

/** Where the build goes. */
export const distDir: string = join(repoDir, "dist")

/** What `tsconfig.build.json` compiles (the benchmarks' worker and what it imports), and the settings. */
const SOURCES = ["protocols", "nats", "runtime", "storage", "actors", "gateway", "bin", "bench/worker.ts", "bench/profile.ts", "bench/campaign"]
const SETTINGS = ["tsconfig.json", "tsconfig.build.json", "package.json"]

/** Files copied as they are: [from, to] relative to the repository and to `dist/`. */
const ASSETS: ReadonlyArray<readonly [string, string]> = [["gateway/dashboard", "gateway/dashboard"]]

/**
 * The young generation's semi-space, in MB (V8's default is 16 on 64-bit). A node allocates
 * fast and briefly (every message is parsed, decoded, handled, encoded and dropped within
 * milliseconds), so with the default most of the collector's time goes to scavenges that
 * find little garbage yet copy what is in flight. Measured on 2 cores (`bench/profile.ts`,
 * 2,000-contact campaigns, runs interleaved): 16 MB 134 to 139 contacts/s, 64 MB 168 to 178
 * (CPU per contact 6.9 to 7.2 ms against 5.3 to 5.6), for about 80 MB more resident memory;
 * the runtime's skeleton (`bench/campaign/Skeleton.ts`) from 475 to 501 contacts/s to 601
 * to 626. 128 MB was no faster and took 130 MB more.
 */
export const SEMI_SPACE_MB = 64

/**
 * Node options of a runtime node in production (the Docker image sets them in
 * `NODE_OPTIONS`; the benchmarks' workers run with them). A worker's live heap is about
 * 60 MB whatever the campaign's size (audiences stream in windows, idle actors passivate),
 * but each contact in flight promotes about 250 KB of short-lived objects to the old space,
 * and V8 sizes its heap from the machine: with several GB of RAM it lets the old space grow
 * to 4 times the live heap before a full collection, so the resident set saws between about
 * 200 and 340 MB. With the old space capped at 1 GB (over 15 times the live heap) V8 grows
 * it by at most 1.6 times: measured on 2 cores, the worker stayed between 185 and 200 MB
 * through 45,000 contacts of a million-contact campaign, for about 0.5 ms more CPU per
 * contact in the collector's threads (5 to 10 %). With the young generation at
 * `SEMI_SPACE_MB` the same worker peaks at about 310 MB (`npm run bench`, memory rows),
 * flat over the run.
 */
export const nodeOptions: ReadonlyArray<string> = ["--max-old-space-size=1024", `--max-semi-space-size=${SEMI_SPACE_MB}`]

/** Written at the end of a successful build, with the time the build started. */
const STAMP = join(distDir, ".build-stamp")

const newestIn = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestIn(path))
    else if (!entry.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

/** True when `dist/` was not built by `build`, or a source changed since. */
export const stale = (): boolean => {
  if (!existsSync(STAMP)) return true
  const built = statSync(STAMP).mtimeMs
  const newest = Math.max(
    ...[...SOURCES, ...SETTINGS]
      .map((p) => join(repoDir, p))
      .filter(existsSync)
      .map((p) => (statSync(p).isDirectory() ? newestIn(p) : statSync(p).mtimeMs))
  )
  return newest >= built
}

/** What a build did. */
export interface BuildResult {
  readonly ok: boolean
  /** The compiler's output (its errors, if any). */
  readonly output: string
  readonly ms: number
}

/** Compiles to `dist/` and copies the assets; `ok` is false when the compiler reported errors. */
export const build = (options: { readonly echo?: boolean } = {}): Promise<BuildResult> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    const child = spawn(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: repoDir, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const take = (d: Buffer) => {
      output += d.toString()
      if (options.echo) process.stdout.write(d)
    }
    child.stdout.on("data", take)
    child.stderr.on("data", take)
    child.on("error", reject)
    child.on("exit", (code) => {
      const ok = code === 0
      if (ok) {
        for (const [from, to] of ASSETS) cpSync(join(repoDir, from), join(distDir, to), { recursive: true })
        writeFileSync(STAMP, `built by npm run build\n`)
        // a source saved while the compiler ran is newer than the stamp: the next check rebuilds
        utimesSync(STAMP, new Date(started), new Date(started))
      }
      resolve({ ok, output, ms: Date.now() - started })
    })
  })
