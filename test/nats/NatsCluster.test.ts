/**
 * Self-test of the NatsCluster fixture: an R3 stream on a real 3-node cluster keeps
 * accepting writes and keeps its data when one server is SIGKILLed, and the restarted
 * server catches up.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { NatsCluster } from "../fixtures/NatsCluster.js"

const STREAM = "FIXTURE_R3"

describe("NatsCluster", () => {
  let cluster: NatsCluster
  let nc: NatsConnection
  let js: JetStreamClient
  let jsm: JetStreamManager

  beforeAll(async () => {
    cluster = await NatsCluster.start()
    nc = await connect({ servers: cluster.servers, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
    js = jetstream(nc, { timeout: 5_000 })
    jsm = await jetstreamManager(nc, { timeout: 5_000 })
  }, 30_000)

  afterAll(async () => {
    await nc?.close()
    await cluster?.shutdown()
  })

  /** Publishes, retrying while the stream elects a new leader after a kill. */
  const publish = async (n: number): Promise<number> => {
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        return (await js.publish(`fixture.r3.${n}`, `m${n}`, { msgID: `m${n}` })).seq
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`publish m${n} still failing after 15 s: ${String(e)}`)
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }

  const messages = async () => (await jsm.streams.info(STREAM)).state.messages

  it("keeps an R3 stream writable and intact through a SIGKILL and a restart", async () => {
    expect(cluster.urls.split(",")).toHaveLength(3)
    const created = await jsm.streams.add({ name: STREAM, subjects: ["fixture.r3.>"], num_replicas: 3 })
    expect(created.config.num_replicas).toBe(3)

    for (let n = 1; n <= 50; n++) await publish(n)
    expect(await messages()).toBe(50)

    // kill the stream leader, the worst case: the stream must elect a new one
    const leaderName = (await jsm.streams.info(STREAM)).cluster?.leader ?? ""
    const victim = cluster.indexOf(leaderName)
    expect(victim, `stream leader ${leaderName} is one of the fixture's servers`).toBeGreaterThanOrEqual(0)
    await cluster.kill(victim)
    expect(cluster.isRunning(victim)).toBe(false)

    for (let n = 51; n <= 100; n++) await publish(n)
    const after = await jsm.streams.info(STREAM)
    expect(after.state.messages, "messages after killing the leader").toBe(100)
    expect(after.cluster?.leader).not.toBe(leaderName)
    const first = await jsm.streams.getMessage(STREAM, { seq: 1 })
    expect(first?.string()).toBe("m1")

    await cluster.restart(victim)
    expect(cluster.isRunning(victim)).toBe(true)
    // the restarted replica catches up: all three replicas current again
    const deadline = Date.now() + 15_000
    for (;;) {
      const info = await jsm.streams.info(STREAM)
      const replicas = info.cluster?.replicas ?? []
      if (replicas.length === 2 && replicas.every((r) => r.current && !r.offline)) break
      if (Date.now() > deadline) throw new Error(`replicas not current after restart: ${JSON.stringify(info.cluster)}`)
      await new Promise((r) => setTimeout(r, 200))
    }

    // and it serves the data: stop another server, the restarted one is in the quorum
    const other = (victim + 1) % 3
    await cluster.stop(other)
    for (let n = 101; n <= 110; n++) await publish(n)
    expect(await messages(), "messages with the restarted server in the quorum").toBe(110)
    const last = await jsm.streams.getMessage(STREAM, { seq: 110 })
    expect(last?.string()).toBe("m110")
  }, 40_000)
})
