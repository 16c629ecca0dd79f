/**
 * Postgres connections write what one drain of the microtask queue issues in one go
 * (`storage/internal/CoalescedWrites`): on a real socket, writes from several microtasks leave
 * in one flush, in order, and a write of a later turn is not held back; on the real Postgres,
 * a tenant-scoped read (opening, statement and `COMMIT`, issued by three fibers) is one write.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import net from "node:net"
import { TenantId } from "../../protocols/Ids.js"
import * as Database from "../../storage/Database.js"
import { coalesceWrites } from "../../storage/internal/CoalescedWrites.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

// A loopback server that keeps what it receives, and a connected client whose flushes to the
// kernel (`_write` / `_writev`, one system call each) are counted.
const pair = Effect.acquireRelease(
  Effect.async<{ server: net.Server; client: net.Socket; received: () => string; flushes: () => number }>((resume) => {
    let data = ""
    const server = net.createServer((s) => s.on("data", (c) => void (data += c.toString())))
    server.listen(0, "127.0.0.1", () => {
      const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1", () => {
        let flushes = 0
        const self = client as unknown as Record<"_write" | "_writev", (...a: Array<unknown>) => unknown>
        for (const k of ["_write", "_writev"] as const) {
          const original = self[k]!.bind(client)
          self[k] = (...a) => {
            flushes++
            return original(...a)
          }
        }
        client.setNoDelay(true)
        resume(Effect.succeed({ server, client, received: () => data, flushes: () => flushes }))
      })
    })
  }),
  ({ client, server }) => Effect.async<void>((resume) => {
    client.destroy()
    server.close(() => resume(Effect.void))
  })
)

const until = (check: () => boolean) =>
  Effect.promise(async () => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
    return check()
  })

// three writes, each from a microtask of its own, in one drain of the queue: what arrives,
// and how many flushes it took
const threeWritesFromMicrotasks = (coalesced: boolean) =>
  Effect.gen(function* () {
    const { client, received, flushes } = yield* pair
    if (coalesced) expect(coalesceWrites(client)).toBe(true)
    let chain = Promise.resolve()
    for (const p of ["a;", "b;", "c;"]) chain = chain.then(() => void client.write(p))
    expect(yield* until(() => received() === "a;b;c;")).toBe(true)
    return flushes()
  })

describe("coalesced Postgres writes", () => {
  it.scoped("writes of one microtask drain leave in one flush, in order", () =>
    Effect.map(threeWritesFromMicrotasks(true), (flushes) => expect(flushes).toBe(1)))

  it.scoped("a plain socket flushes each of them", () =>
    Effect.map(threeWritesFromMicrotasks(false), (flushes) => expect(flushes).toBe(3)))

  it.scoped("a write of a later turn is sent in its own turn, not held back", () =>
    Effect.gen(function* () {
      const { client, received, flushes } = yield* pair
      coalesceWrites(client)
      client.write("first;")
      // the next turn of the event loop: the first write has left, the second goes at once
      yield* Effect.promise(() => new Promise<void>((r) => setImmediate(r)))
      expect(flushes()).toBe(1)
      client.write("second;")
      yield* Effect.promise(() => new Promise<void>((r) => setImmediate(r)))
      expect(flushes()).toBe(2)
      expect(yield* until(() => received() === "first;second;")).toBe(true)
    }))

  it("refuses what cannot cork", () => {
    expect(coalesceWrites(null)).toBe(false)
    expect(coalesceWrites({ write: () => true })).toBe(false)
  })

  it.live("on the real Postgres, a tenant-scoped read is one write to the server", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const db = yield* Postgres.freshDatabase
        const port = Number(new URL(db.url).port || 5432)
        const env = yield* Layer.build(Database.layerUrl(db.url, { maxConnections: 1 }))
        const sql = Context.get(env, SqlClient.SqlClient)
        const tenant = TenantId.make("coalesced")
        yield* Tenancy.read(sql, tenant)(sql`SELECT 1 AS one`) // the pool's connection is open from here on

        // flushes to the server's port, on every socket of the process
        let flushes = 0
        const proto = net.Socket.prototype as unknown as Record<"_write" | "_writev", (...a: Array<unknown>) => unknown>
        const originals = { _write: proto._write!, _writev: proto._writev! }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            for (const k of ["_write", "_writev"] as const) {
              proto[k] = function (this: net.Socket, ...a: Array<unknown>) {
                if (this.remotePort === port) flushes++
                return originals[k].apply(this, a)
              }
            }
          }),
          () => Effect.sync(() => Object.assign(proto, originals))
        )
        for (let i = 0; i < 5; i++) {
          const rows = yield* Tenancy.read(sql, tenant)(sql<{ one: number }>`SELECT ${i}::int AS one`)
          expect(rows).toEqual([{ one: i }])
        }
        expect(flushes, "opening, statement and COMMIT in one write per read").toBe(5)
      })
    ))
})
