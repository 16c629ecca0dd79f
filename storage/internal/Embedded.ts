/**
 * The embedded engine: a PGlite database (Postgres compiled to WASM, in this process)
 * served on a loopback TCP port by `@electric-sql/pglite-socket`, so the same `pg` driver
 * and `PgClient` talk to it as to a real server. Scoped: release stops the socket server
 * and closes PGlite (which flushes its data directory).
 */
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { mkdir } from "node:fs/promises"
import { Effect, type Scope } from "effect"
import * as Errors from "../Errors.js"
import type { StorageError } from "../Errors.js"

/** PGlite's in-memory data directory: nothing is written to disk. */
export const memory = "memory://"

/** Where the socket server listens. */
export interface Endpoint {
  readonly host: string
  readonly port: number
}

/**
 * Socket connections the server accepts. PGlite is one single-user backend: the server
 * queues messages from every connection onto it, and only explicit transactions keep a
 * connection's messages together. The pool therefore uses one connection; the spare slots
 * only absorb a reconnect that overlaps the close of the previous socket.
 */
const maxSocketConnections = 4

const embeddedError = (operation: string) => (cause: unknown): StorageError =>
  Errors.make(
    operation,
    "Embedded",
    `${operation}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  )

/** Opens PGlite on `dir` (created if missing, or `memory://`) and serves it on 127.0.0.1:<random>. */
export const serve = (dir: string): Effect.Effect<Endpoint, StorageError, Scope.Scope> =>
  Effect.gen(function* () {
    if (!dir.startsWith(memory)) {
      yield* Effect.tryPromise({
        try: () => mkdir(dir, { recursive: true }),
        catch: embeddedError("Database.embedded.mkdir")
      })
    }
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => PGlite.create(dir), catch: embeddedError("Database.embedded.open") }),
      (db) =>
        Effect.tryPromise(() => db.close()).pipe(
          Effect.catchAll((e) => Effect.logWarning("PGlite close failed", e))
        )
    )
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const server = new PGLiteSocketServer({
            db,
            host: "127.0.0.1",
            port: 0,
            maxConnections: maxSocketConnections
          })
          await server.start()
          return server
        },
        catch: embeddedError("Database.embedded.listen")
      }),
      (server) =>
        Effect.tryPromise(() => server.stop()).pipe(
          Effect.catchAll((e) => Effect.logWarning("PGlite socket server stop failed", e))
        )
    )
    // getServerConn() is "host:port" once started on a TCP port (port 0 → the OS's choice)
    const conn = server.getServerConn()
    const port = Number(conn.slice(conn.lastIndexOf(":") + 1))
    if (!Number.isInteger(port) || port <= 0) {
      return yield* Effect.fail(embeddedError("Database.embedded.listen")(`unexpected server address ${conn}`))
    }
    return { host: "127.0.0.1", port }
  }).pipe(Effect.withSpan("Database.embedded.serve", { attributes: { dir } }))
