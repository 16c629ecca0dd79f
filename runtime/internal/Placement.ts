/**
 * Placement of mailbox partitions on nodes, so that at most one node handles an actor.
 *
 * Nodes register in a KV bucket and heartbeat (`node.<id>`); each partition has a lease
 * (`part.<n>` = holder node), written only with revision checks. The owner a partition
 * should have comes from rendezvous hashing with bounded loads among live nodes (`owners`):
 * every node holds its share, and a join or a leave moves mostly the partitions it must. A
 * holder that is no longer the owner drains the partition and deletes its lease; the owner
 * then claims it. A holder whose heartbeats stopped is considered dead after `failoverMs`
 * (measured on the observer's own clock, and for the registrations a joining node finds on
 * the server's: no clock skew), and the new owners take its leases over with a
 * revision-checked update.
 *
 * Fencing: a node refuses to commit work for a partition unless it holds the lease and its
 * last acknowledged heartbeat was sent less than `0.75 × failoverMs` ago. A rival takes over only
 * after `failoverMs` without heartbeats, so by then the old holder has stopped committing.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv"
import { Effect } from "effect"
import { hash32 } from "../../protocols/Subjects.js"

/** Tunables of placement. */
export interface PlacementOptions {
  /** Heartbeat period. Default 300 ms. */
  readonly heartbeatMs: number
  /** A node silent this long is dead and its partitions move. Default 4,000 ms. */
  readonly failoverMs: number
}

/** Default tunables. */
export const defaults: PlacementOptions = { heartbeatMs: 300, failoverMs: 4_000 }

/** What placement drives. */
export interface PartitionHandler {
  readonly start: (partition: number) => Promise<void>
  /** Stops a partition and resolves once its delivered work is committed. */
  readonly stop: (partition: number) => Promise<void>
}

/** A running placement. */
export interface Placement {
  /** Whether this node may commit work of `partition` now (the fence). */
  readonly mayCommit: (partition: number) => boolean
  /** Partitions this node holds. */
  readonly owned: () => ReadonlyArray<number>
  /** Live nodes as this node sees them. */
  readonly liveNodes: () => ReadonlyArray<string>
  /** Leaves: stops every partition, releases the leases, deregisters. */
  readonly leave: () => Promise<void>
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** murmur3's finaliser: spreads every input bit over the whole word (FNV alone does not). */
const fmix32 = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A node's rendezvous score for a partition: the higher, the more the partition wants the node. */
const score = (nodeHash: number, partition: number): number => fmix32(nodeHash ^ Math.imul(partition + 1, 0x9e3779b1))

/**
 * The owner of every partition among `nodes`: rendezvous hashing with bounded loads.
 *
 * Plain rendezvous hashing (each partition to its best-scoring node) gives each node a random
 * share: with 32 partitions on 4 nodes the busiest node held 1.46 times its fair share on
 * average (14 of 32 in one scale-out run), and a worker's share of the actors is its share of
 * the work. Here the (partition, node) pairs are taken best score first, and a pair is kept
 * while its partition has no owner and its node has room: every node holds ⌊P/N⌋ partitions,
 * and P mod N of them one more. The result depends only on the set of nodes, so every node
 * computes the same. A join or a leave still moves mostly the partitions it must: with 32
 * partitions and 2 to 8 nodes, 1.5 to 1.7 more than those on average (`Placement.test.ts`).
 */
export const owners = (nodes: ReadonlyArray<string>, partitions: number): ReadonlyArray<string | undefined> => {
  const owner: Array<string | undefined> = new Array(partitions).fill(undefined)
  if (nodes.length === 0) return owner
  const sorted = [...new Set(nodes)].sort()
  const hashes = sorted.map(hash32)
  const pairs: Array<{ readonly score: number; readonly node: number; readonly partition: number }> = []
  for (let p = 0; p < partitions; p++) for (let n = 0; n < sorted.length; n++) pairs.push({ score: score(hashes[n]!, p), node: n, partition: p })
  // ties (equal scores) go to the earlier node name, then the lower partition
  pairs.sort((a, b) => b.score - a.score || a.node - b.node || a.partition - b.partition)
  const floor = Math.floor(partitions / sorted.length)
  let extras = partitions % sorted.length
  const load = new Array<number>(sorted.length).fill(0)
  let left = partitions
  for (const { node, partition } of pairs) {
    if (left === 0) break
    if (owner[partition] !== undefined) continue
    if (load[node]! === floor) {
      if (extras === 0) continue
      extras--
    } else if (load[node]! > floor) continue
    owner[partition] = sorted[node]
    load[node]!++
    left--
  }
  return owner
}

/** Joins placement as `nodeId` and keeps reconciling until `leave`. */
export const start = (
  kv: KV,
  nodeId: string,
  partitions: number,
  handler: PartitionHandler,
  options: PlacementOptions = defaults,
  log: (line: string) => void = () => {}
): Effect.Effect<Placement> =>
  Effect.promise(async () => {
    const nodes = new Map<string, { revision: number; seenAt: number }>()
    const leases = new Map<number, { holder: string; revision: number }>()
    const owned = new Set<number>()
    const moving = new Set<number>()
    let lastBeatOk = 0
    // stop committing well before a rival may take over (it waits `failoverMs` of silence)
    const fenceMs = options.failoverMs * 0.75
    let leaving = false

    const beat = async () => {
      // the fence counts from when a heartbeat was sent: rivals count from when it was stored
      const sentAt = Date.now()
      try {
        await kv.put(`node.${nodeId}`, enc.encode(JSON.stringify({ id: nodeId, at: sentAt })))
        lastBeatOk = Math.max(lastBeatOk, sentAt)
      } catch (e) {
        log(`placement: heartbeat failed: ${String(e)}`)
      }
    }
    await beat()

    // decisions wait until the watch has replayed what the bucket holds (a partial view
    // would make this node claim partitions other nodes hold or want)
    let ready = false
    // Registrations replayed when the watch starts were written some time ago: each is aged
    // by the server's clock, by how long before the bucket's latest write (this node's own
    // heartbeat, written just before the watch) it was written. Taken as heard just now, a
    // node dead for 3 s would look alive for another full `failoverMs` to a node that joins
    // now; and as rendezvous hashing often hands the dead node's partitions to the newcomer
    // (a restarted worker, typically), the others would not take them either: failover took
    // the newcomer's start-up plus `failoverMs` (about 7.5 s in the fault test, not 4.5).
    // Both times are the server's, so clock skew between nodes does not enter.
    const replayed: Array<{ readonly id: string; readonly revision: number; readonly writtenAt: number }> = []
    let latestWrite = 0
    const apply = (e: KvWatchEntry) => {
      const replaying = !ready
      if (e.isUpdate || (e.delta ?? 0) === 0) ready = true
      latestWrite = Math.max(latestWrite, e.created.getTime())
      const [kind, rest] = [e.key.slice(0, e.key.indexOf(".")), e.key.slice(e.key.indexOf(".") + 1)]
      const gone = e.operation !== "PUT"
      if (kind === "node") {
        if (gone) nodes.delete(rest)
        else {
          nodes.set(rest, { revision: e.revision, seenAt: Date.now() })
          if (replaying) replayed.push({ id: rest, revision: e.revision, writtenAt: e.created.getTime() })
        }
      } else if (kind === "part") {
        const p = Number(rest)
        if (gone) leases.delete(p)
        else leases.set(p, { holder: dec.decode(e.value), revision: e.revision })
      }
      if (replaying && ready) {
        const now = Date.now()
        for (const r of replayed) {
          const n = nodes.get(r.id)
          if (n !== undefined && n.revision === r.revision) n.seenAt = now - Math.max(0, latestWrite - r.writtenAt)
        }
        replayed.length = 0
      }
    }

    const live = () => {
      const now = Date.now()
      const out: Array<string> = leaving ? [] : [nodeId]
      for (const [id, n] of nodes) if (id !== nodeId && now - n.seenAt < options.failoverMs) out.push(id)
      return out
    }

    const releasing = new Map<number, Promise<void>>()
    /** Gives a partition up; `graceful` lets in-flight work commit first (not when the lease was lost). */
    const release = (p: number, graceful = true): Promise<void> => {
      const inProgress = releasing.get(p)
      if (inProgress) return inProgress
      moving.add(p)
      if (!graceful) owned.delete(p)
      const done = (async () => {
        try {
          await handler.stop(p)
          owned.delete(p)
          const lease = leases.get(p)
          if (lease?.holder === nodeId) await kv.delete(`part.${p}`, { previousSeq: lease.revision }).catch(() => undefined)
          log(`placement: released partition ${p}`)
        } finally {
          moving.delete(p)
          releasing.delete(p)
          schedule()
        }
      })()
      releasing.set(p, done)
      return done
    }

    const claiming = new Map<number, Promise<void>>()
    const claim = (p: number, lease: { holder: string; revision: number } | undefined) => {
      moving.add(p)
      const done = claimOne(p, lease).finally(() => {
        moving.delete(p)
        claiming.delete(p)
        schedule()
      })
      claiming.set(p, done)
      return done
    }
    const claimOne = async (p: number, lease: { holder: string; revision: number } | undefined) => {
      let revision: number
      try {
        revision = lease === undefined
          ? await kv.create(`part.${p}`, enc.encode(nodeId))
          : await kv.update(`part.${p}`, enc.encode(nodeId), lease.revision)
      } catch {
        return // another node won the race; the watch will tell us who
      }
      leases.set(p, { holder: nodeId, revision })
      owned.add(p)
      try {
        await handler.start(p)
        log(`placement: took partition ${p}${lease ? ` from ${lease.holder}` : ""}`)
      } catch (e) {
        // holding a lease without consuming would stall the partition: give it back
        log(`placement: could not start partition ${p}, giving it back: ${String(e)}`)
        owned.delete(p)
        await handler.stop(p).catch(() => undefined)
        await kv.delete(`part.${p}`, { previousSeq: revision }).catch(() => undefined)
      }
    }

    // claims and releases run in the background (tracked in `moving`): a slow hand-over of
    // one partition must never hold up placement of the others
    let running = false
    let lastView = ""
    // the assignment of the live set last seen (recomputed only when that set changes)
    let assignedTo: string | null = null
    let assignment: ReadonlyArray<string | undefined> = []
    const reconcile = () => {
      if (running || !ready) return
      running = true
      try {
        const alive = live()
        const healthy = Date.now() - lastBeatOk < fenceMs
        const members = alive.sort().join(",")
        const view = `${members} healthy=${healthy}`
        if (view !== lastView) log(`placement: live nodes ${view}`)
        lastView = view
        if (members !== assignedTo) {
          assignment = owners(alive, partitions)
          assignedTo = members
        }
        for (let p = 0; p < partitions; p++) {
          if (moving.has(p)) continue
          const want = healthy && !leaving && assignment[p] === nodeId
          const lease = leases.get(p)
          if (owned.has(p)) {
            if (lease?.holder !== nodeId) void release(p, false)
            else if (!want) void release(p)
          } else if (want) {
            if (lease === undefined || !alive.includes(lease.holder)) void claim(p, lease)
          }
        }
      } finally {
        running = false
      }
    }
    let scheduled = false
    const schedule = () => {
      if (scheduled) return
      scheduled = true
      queueMicrotask(() => {
        scheduled = false
        reconcile()
      })
    }

    let watcher: Awaited<ReturnType<KV["watch"]>> | undefined
    for (let attempt = 0; watcher === undefined; attempt++) {
      try {
        watcher = await kv.watch({ key: ">" })
      } catch (e) {
        // JetStream unavailable for a moment (leader election): try again, for about a minute
        if (attempt > 120) throw e
        await new Promise((r) => setTimeout(r, 500))
      }
    }
    const watching = (async () => {
      for await (const e of watcher!) {
        apply(e)
        schedule()
      }
    })()

    const timer = setInterval(() => {
      void beat().then(schedule)
      // drop registrations of nodes dead for long (their leases were taken over already)
      const now = Date.now()
      for (const [id, n] of nodes) {
        if (id !== nodeId && now - n.seenAt > 30 * options.failoverMs) {
          void kv.delete(`node.${id}`, { previousSeq: n.revision }).catch(() => undefined)
        }
      }
    }, options.heartbeatMs)
    schedule()

    return {
      mayCommit: (p) => owned.has(p) && Date.now() - lastBeatOk < fenceMs,
      owned: () => [...owned].sort((a, b) => a - b),
      liveNodes: () => live(),
      leave: async () => {
        leaving = true
        clearInterval(timer)
        while (claiming.size > 0) await Promise.all(claiming.values())
        await Promise.all([...[...owned].map((p) => release(p)), ...releasing.values()])
        await kv.delete(`node.${nodeId}`).catch(() => undefined)
        watcher!.stop()
        await watching.catch(() => undefined)
      }
    } satisfies Placement
  })
