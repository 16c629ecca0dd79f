/**
 * LocalServer.ensure: starts a nats-server when nothing answers, stops it with the scope,
 * reuses a server that already answers, and fails with instructions otherwise.
 */
import { connect } from "@nats-io/transport-node"
import { Effect, Exit, Option, Scope } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as LocalServer from "../../nats/LocalServer.js"
import { freePorts } from "../fixtures/NatsCluster.js"

const dataDir = mkdtempSync(join(tmpdir(), "nexus-localserver-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const freePort = () => freePorts(1).then(([port]) => port!)

/** Runs `ensure` in a scope the test closes itself. */
const ensureIn = (scope: Scope.CloseableScope, options: LocalServer.EnsureOptions) =>
  Effect.runPromise(LocalServer.ensure(options).pipe(Scope.extend(scope)))

const answers = (port: number) => Effect.runPromise(LocalServer.answers("127.0.0.1", port, 500))

const hasBinary = Option.isSome(LocalServer.findBinary())

describe("LocalServer", () => {
  it("parses NATS URLs", () => {
    expect(LocalServer.hostPort("nats://127.0.0.1:4333")).toEqual({ host: "127.0.0.1", port: 4333 })
    expect(LocalServer.hostPort("localhost")).toEqual({ host: "localhost", port: 4222 })
    expect(LocalServer.hostPort("nats://a:1,nats://b:2")).toEqual({ host: "a", port: 1 })
  })

  it("does not take a listener that is not NATS for a NATS server", async () => {
    const silent = createServer((socket) => socket.write("HTTP/1.1 400 Bad Request\r\n\r\n"))
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r))
    const port = (silent.address() as AddressInfo).port
    try {
      expect(await answers(port)).toBe(false)
    } finally {
      await new Promise((r) => silent.close(r))
    }
  })

  it.runIf(hasBinary)("starts nats-server with JetStream, reuses it, and stops it with the scope", async () => {
    const port = await freePort()
    const url = `nats://127.0.0.1:${port}`
    expect(await answers(port), "nothing on the free port before ensure").toBe(false)

    const owner = Effect.runSync(Scope.make())
    expect(await ensureIn(owner, { url, dataDir })).toBe(url)
    const nc = await connect({ servers: url })
    expect(nc.info?.jetstream, "started server has JetStream").toBe(true)
    await nc.close()

    // a second caller finds it answering and starts nothing (this binary would fail)
    const user = Effect.runSync(Scope.make())
    expect(await ensureIn(user, { url, dataDir, binary: join(dataDir, "no-such-binary") })).toBe(url)
    await Effect.runPromise(Scope.close(user, Exit.void))
    expect(await answers(port), "closing the reusing scope leaves the server running").toBe(true)

    await Effect.runPromise(Scope.close(owner, Exit.void))
    expect(await answers(port), "closing the owning scope stops the server").toBe(false)
  })

  it("fails with instructions when the server it starts exits at once", async () => {
    const port = await freePort()
    const scope = Effect.runSync(Scope.make())
    // node rejects nats-server's flags and exits: stands in for a broken nats-server
    const error = await Effect.runPromise(
      Effect.flip(LocalServer.ensure({ url: `nats://127.0.0.1:${port}`, dataDir, binary: process.execPath })).pipe(
        Scope.extend(scope)
      )
    )
    await Effect.runPromise(Scope.close(scope, Exit.void))
    expect(error._tag).toBe("LocalServerError")
    expect(error.message).toContain("exited with")
    expect(error.message).toContain("apt-get install nats-server")
  })

  it("fails with instructions when the binary cannot be run", async () => {
    const port = await freePort()
    const error = await Effect.runPromise(
      Effect.scoped(
        Effect.flip(LocalServer.ensure({ url: `nats://127.0.0.1:${port}`, dataDir, binary: join(dataDir, "no-such-binary") }))
      )
    )
    expect(error.message).toContain("could not run")
    expect(error.message).toContain("apt-get install nats-server")
  })

  it("fails with instructions for a remote URL nothing answers at", async () => {
    const error = await Effect.runPromise(
      Effect.scoped(Effect.flip(LocalServer.ensure({ url: "nats://192.0.2.1:4222", dataDir, probeTimeoutMs: 200 })))
    )
    expect(error._tag).toBe("LocalServerError")
    expect(error.message).toContain("apt-get install nats-server")
    expect(error.message).toContain("docker compose up -d nats-1")
    expect(error.message).toContain("NATS_URL")
  })
})
