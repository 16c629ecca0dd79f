/**
 * A NATS server for local runs (the demo, `nexus start`): use the one that answers at the
 * configured URL, or start a single `nats-server` with JetStream as a child process that
 * lives as long as the scope, or fail saying how to get one.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { accessSync, constants, mkdirSync, statSync } from "node:fs"
import { createConnection } from "node:net"
import { delimiter, join } from "node:path"
import { Data, Duration, Effect, Option, type Scope } from "effect"

/** No NATS server answers at the URL and none could be started here. */
export class LocalServerError extends Data.TaggedError("LocalServerError")<{
  readonly url: string
  readonly message: string
  readonly cause?: unknown
}> {
  readonly retryable = false
}

/** Options of `ensure`. */
export interface EnsureOptions {
  /** The URL to use (`NATS_URL`; a comma-separated list is accepted, its first entry is started). */
  readonly url: string
  /** Directory for local data; JetStream files go to `<dataDir>/nats`. */
  readonly dataDir: string
  /** How long a probe connection may take. Default 500 ms. */
  readonly probeTimeoutMs?: number
  /** How long a started server may take to accept connections. Default 10 s. */
  readonly startTimeoutMs?: number
  /** How long the server may take to exit after SIGTERM before it gets SIGKILL. Default 5 s. */
  readonly stopTimeoutMs?: number
  /** The `nats-server` executable. Default: found by `findBinary`. */
  readonly binary?: string
}

/** Directories searched after `PATH` (Debian installs nats-server in /usr/sbin). */
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]

const isExecutable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** Finds the `nats-server` executable on `PATH` or in the sbin directories. */
export const findBinary = (path: string = process.env.PATH ?? ""): Option.Option<string> => {
  const dirs = [...path.split(delimiter).filter((d) => d.length > 0), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const file = join(dir, "nats-server")
    if (isExecutable(file)) return Option.some(file)
  }
  return Option.none()
}

/** Host and port of a NATS URL (`nats://h:p`, `h:p`, or the first of a comma-separated list). */
export const hostPort = (url: string): { readonly host: string; readonly port: number } => {
  const first = url.split(",")[0]!.trim()
  const parsed = new URL(first.includes("://") ? first : `nats://${first}`)
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1"
  return { host, port: parsed.port === "" ? 4222 : Number(parsed.port) }
}

/**
 * True when a NATS server answers at host:port within the timeout: it accepts the TCP
 * connection and greets with its `INFO` line (a bare TCP accept is not enough; some
 * networks accept any connection).
 */
export const answers = (host: string, port: number, timeoutMs = 500): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = createConnection({ host, port })
    let greeting = ""
    const done = (ok: boolean) => {
      socket.removeAllListeners()
      socket.on("error", () => {})
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      greeting += chunk
      if (greeting.length >= 5) done(greeting.startsWith("INFO "))
    })
    socket.once("error", () => done(false))
    socket.once("end", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "0.0.0.0"])

const howToGetOne = (url: string, why: string) =>
  `No NATS server answers at ${url} and ${why}. Get one of these:\n` +
  `  - install nats-server: \`apt-get install nats-server\` (or your OS's package manager, e.g. \`brew install nats-server\`), then run again;\n` +
  `  - from this repository: \`docker compose up -d nats-1\` (starts the 3-node JetStream cluster);\n` +
  `  - or set NATS_URL to a running NATS server with JetStream enabled.`

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Waits for the child to exit, up to `ms`; true when it did. */
const waitExit = (child: ChildProcess, ms: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    if (exited(child)) return resume(Effect.succeed(true))
    const timer = setTimeout(() => {
      child.off("exit", onExit)
      resume(Effect.succeed(false))
    }, ms)
    const onExit = () => {
      clearTimeout(timer)
      resume(Effect.succeed(true))
    }
    child.once("exit", onExit)
    return Effect.sync(() => {
      clearTimeout(timer)
      child.off("exit", onExit)
    })
  })

/** SIGTERM, then SIGKILL if it has not exited after `timeoutMs`. Idempotent. */
const stop = (child: ChildProcess, timeoutMs: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (exited(child)) return
    child.kill("SIGTERM")
    if (yield* waitExit(child, timeoutMs)) return
    yield* Effect.logWarning(`nats-server (pid ${child.pid}) ignored SIGTERM for ${timeoutMs} ms; killing it`)
    child.kill("SIGKILL")
    yield* waitExit(child, timeoutMs)
  })

/** Starts `nats-server` and removes it with the scope (also if this process exits first). */
const spawnServer = (binary: string, host: string, port: number, storeDir: string, stopTimeoutMs: number) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        mkdirSync(storeDir, { recursive: true })
        const child = spawn(binary, ["-js", "-a", host, "-p", String(port), "-sd", storeDir], {
          stdio: ["ignore", "ignore", "pipe"]
        })
        // keep the last few KB of the server's log to explain a failed start
        const log: Array<string> = []
        const state = { spawnError: undefined as Error | undefined }
        // e.g. ENOENT or EACCES: the process never ran, and "exit" will not come
        child.once("error", (e) => {
          state.spawnError = e
          log.push(`${e.message}\n`)
        })
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
          log.push(chunk)
          while (log.length > 32) log.shift()
        })
        const killOnExit = () => {
          if (!exited(child)) child.kill("SIGKILL")
        }
        process.once("exit", killOnExit)
        child.once("exit", () => process.off("exit", killOnExit))
        return { child, log, state }
      },
      catch: (cause) => cause
    }),
    ({ child }) => stop(child, stopTimeoutMs)
  )

/**
 * Returns the NATS URL to use: `options.url` when something answers there; otherwise starts
 * `nats-server -js` on the URL's loopback port (stopped when the scope closes) and returns
 * the same URL; otherwise fails with `LocalServerError` saying how to get a server.
 */
export const ensure = Effect.fn("LocalServer.ensure")(function* (
  options: EnsureOptions
): Effect.fn.Return<string, LocalServerError, Scope.Scope> {
  const url = options.url
  const { host, port } = yield* Effect.try({
    try: () => hostPort(url),
    catch: (cause) => new LocalServerError({ url, message: `not a NATS URL: ${url}`, cause })
  })
  if (yield* answers(host, port, options.probeTimeoutMs ?? 500)) return url

  if (!LOOPBACK.has(host)) {
    return yield* new LocalServerError({ url, message: howToGetOne(url, `${host} is not this machine`) })
  }
  const binary = options.binary ?? Option.getOrUndefined(findBinary())
  if (binary === undefined) {
    return yield* new LocalServerError({ url, message: howToGetOne(url, "no nats-server was found on PATH") })
  }

  const listenHost = host === "localhost" || host === "0.0.0.0" ? "127.0.0.1" : host
  const storeDir = join(options.dataDir, "nats")
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000
  const { child, log, state } = yield* spawnServer(binary, listenHost, port, storeDir, stopTimeoutMs).pipe(
    Effect.mapError((cause) =>
      new LocalServerError({ url, message: howToGetOne(url, `starting ${binary} failed: ${String(cause)}`), cause })
    )
  )
  yield* Effect.logInfo(`started ${binary} (pid ${child.pid}) on ${listenHost}:${port}, JetStream in ${storeDir}`)

  const startTimeoutMs = options.startTimeoutMs ?? 10_000
  const failed = (why: string) =>
    new LocalServerError({
      url,
      message: howToGetOne(url, `the nats-server started here ${why}`) + `\nIts log ends with:\n${log.join("").slice(-2000)}`
    })
  const ready = yield* Effect.gen(function* () {
    while (!exited(child) && state.spawnError === undefined) {
      if (yield* answers(listenHost, port, 250)) return true
      yield* Effect.sleep(Duration.millis(100))
    }
    return false
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(startTimeoutMs),
      onTimeout: () => failed(`did not accept connections within ${startTimeoutMs} ms`)
    }),
    Effect.onError(() => stop(child, stopTimeoutMs))
  )
  if (!ready) {
    yield* Effect.sleep(Duration.millis(50)) // let the last log lines arrive
    return yield* failed(
      state.spawnError ? `could not run: ${state.spawnError.message}` : `exited with ${child.exitCode ?? child.signalCode}`
    )
  }
  return url
})
