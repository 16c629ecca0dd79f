/**
 * Placement of mailbox partitions on nodes, so that at most one node handles an actor.
 *
 * Nodes register in a KV bucket and heartbeat (`node.<id>`); each partition has a lease
 * (`part.<n>` = holder node), written only with revision checks. The owner a partition
 * should have is the rendezvous-hashing winner among live nodes, so a join or a leave moves
 * only the partitions it must. A holder that is no longer the winner drains the partition
 * and deletes its lease; the winner then claims it. A holder whose heartbeats stopped is
 * considered dead after `failoverMs` (measured on the observer's own clock: no clock
 * skew), and the winner takes its leases over with a revision-checked update.
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

/** The rendezvous winner for a partition among nodes. */
export const ownerOf = (nodes: ReadonlyArray<string>, partition: number): string | undefined => {
  let best: string | undefined
  let bestScore = -1
  for (const n of nodes) {
    const score = hash32(`${n}/${partition}`)
    if (score > bestScore || (score === bestScore && n < best!)) {
      best = n
      bestScore = score
    }
  }
  return best
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

    const apply = (e: KvWatchEntry) => {
      const [kind, rest] = [e.key.slice(0, e.key.indexOf(".")), e.key.slice(e.key.indexOf(".") + 1)]
      const gone = e.operation !== "PUT"
      if (kind === "node") {
        if (gone) nodes.delete(rest)
        else nodes.set(rest, { revision: e.revision, seenAt: Date.now() })
      } else if (kind === "part") {
        const p = Number(rest)
        if (gone) leases.delete(p)
        else leases.set(p, { holder: dec.decode(e.value), revision: e.revision })
      }
    }

    const live = () => {
      const now = Date.now()
      const out: Array<string> = []
      for (const [id, n] of nodes) if (id === nodeId ? !leaving : now - n.seenAt < options.failoverMs) out.push(id)
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
        }
      })()
      releasing.set(p, done)
      return done
    }

    const claim = async (p: number, lease: { holder: string; revision: number } | undefined) => {
      moving.add(p)
      try {
        const revision = lease === undefined
          ? await kv.create(`part.${p}`, enc.encode(nodeId))
          : await kv.update(`part.${p}`, enc.encode(nodeId), lease.revision)
        leases.set(p, { holder: nodeId, revision })
        owned.add(p)
        await handler.start(p)
        log(`placement: took partition ${p}${lease ? ` from ${lease.holder}` : ""}`)
      } catch {
        // another node won the race; the watch will tell us who
      } finally {
        moving.delete(p)
      }
    }

    let running = false
    let again = false
    const reconcile = async () => {
      if (running) {
        again = true
        return
      }
      running = true
      try {
        do {
          again = false
          const alive = live()
          const healthy = Date.now() - lastBeatOk < fenceMs
          const work: Array<Promise<void>> = []
          for (let p = 0; p < partitions; p++) {
            if (moving.has(p)) continue
            const want = healthy && !leaving && ownerOf(alive, p) === nodeId
            const lease = leases.get(p)
            if (owned.has(p)) {
              if (lease?.holder !== nodeId) work.push(release(p, false))
              else if (!want) work.push(release(p))
            } else if (want) {
              if (lease === undefined || !alive.includes(lease.holder)) work.push(claim(p, lease))
            }
          }
          await Promise.all(work)
        } while (again)
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
        void reconcile()
      })
    }

    const watcher = await kv.watch({ key: ">" })
    const watching = (async () => {
      for await (const e of watcher) {
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
        await Promise.all([...[...owned].map((p) => release(p)), ...releasing.values()])
        while (running) await new Promise((r) => setTimeout(r, 10))
        await kv.delete(`node.${nodeId}`).catch(() => undefined)
        watcher.stop()
        await watching.catch(() => undefined)
      }
    } satisfies Placement
  })
