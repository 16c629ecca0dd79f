/**
 * Placement on a real KV bucket, for a node that joins: a registration it finds when it
 * starts is aged by the server's clock. A node that died before the newcomer started is
 * dead to it at once (its partitions move without another full failover wait), and a live
 * node found the same way stays alive (nothing of it is taken).
 */
import { describe, expect, it } from "@effect/vitest"
import type { KV } from "@nats-io/kv"
import { Effect } from "effect"
import { connectWith } from "../../nats/NatsClient.js"
import * as Placement from "../../runtime/internal/Placement.js"
import { randomPrefix } from "../fixtures/Nats.js"

const url = process.env.NATS_URL ?? "nats://127.0.0.1:4222"
const PARTITIONS = 8
const enc = new TextEncoder()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const withBucket = async (body: (kv: KV) => Promise<void>) => {
  const h = await Effect.runPromise(connectWith([url], "placement-failover-test"))
  const kv = await h.kvm.create(`placement_${randomPrefix()}`, { history: 1 })
  try {
    await body(kv)
  } finally {
    await kv.destroy().catch(() => false)
    await h.nc.close()
  }
}

const handler = (started: Set<number>): Placement.PartitionHandler => ({
  start: async (p) => void started.add(p),
  stop: async (p) => void started.delete(p)
})

const waitFor = async (what: string, cond: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

describe("Placement: a joining node (real KV)", () => {
  const options = { heartbeatMs: 100, failoverMs: 3_000 }

  it("takes over the partitions of a node that died before it started without waiting a failover of its own", () =>
    withBucket(async (kv) => {
      // a node that crashed holding every partition: its last heartbeat, its leases
      await kv.put("node.ghost", enc.encode(JSON.stringify({ id: "ghost", at: Date.now() })))
      for (let p = 0; p < PARTITIONS; p++) await kv.put(`part.${p}`, enc.encode("ghost"))
      await sleep(options.failoverMs + 300)

      const started = new Set<number>()
      const t0 = Date.now()
      const b = await Effect.runPromise(Placement.start(kv, "newcomer", PARTITIONS, handler(started), options))
      try {
        await waitFor("the newcomer to hold every partition", () => b.owned().length === PARTITIONS, 10_000)
        // silent for longer than failoverMs already: dead at once, not failoverMs after the newcomer saw it
        expect(Date.now() - t0).toBeLessThan(options.failoverMs / 2)
        expect(b.liveNodes()).toEqual(["newcomer"])
        expect([...started].sort()).toEqual(Array.from({ length: PARTITIONS }, (_, i) => i))
      } finally {
        await b.leave()
      }
    }), 30_000)

  it("keeps a live node it found alive, and takes only the partitions it wins", () =>
    withBucket(async (kv) => {
      const startedA = new Set<number>()
      const startedB = new Set<number>()
      const a = await Effect.runPromise(Placement.start(kv, "node-a", PARTITIONS, handler(startedA), options))
      try {
        await waitFor("node-a to hold every partition", () => a.owned().length === PARTITIONS, 10_000)
        await sleep(500)
        const b = await Effect.runPromise(Placement.start(kv, "node-b", PARTITIONS, handler(startedB), options))
        try {
          const wins = (n: string) => Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => Placement.owners(["node-a", "node-b"], PARTITIONS)[p] === n)
          await waitFor("the partitions to split by rendezvous", () => b.owned().join() === wins("node-b").join() && a.owned().join() === wins("node-a").join(), 10_000)
          // longer than a failover: node-a heartbeats, so node-b never takes what node-a wins
          await sleep(options.failoverMs + 500)
          expect([...b.liveNodes()].sort()).toEqual(["node-a", "node-b"])
          expect(a.owned()).toEqual(wins("node-a"))
          expect(b.owned()).toEqual(wins("node-b"))
          expect([...startedA].filter((p) => startedB.has(p))).toEqual([])
        } finally {
          await b.leave()
        }
      } finally {
        await a.leave()
      }
    }), 30_000)
})
