/**
 * Placement by rendezvous hashing with bounded loads: every node holds its share of the
 * partitions (⌊P/N⌋ or one more), the same whoever computes it, and a node joining or
 * leaving moves mostly the partitions it must.
 */
import { describe, expect, it } from "vitest"
import { owners } from "../../runtime/internal/Placement.js"

const nodes = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => `worker-${salt}-${i}-${((i + salt) * 7919).toString(16)}`)

const loads = (assignment: ReadonlyArray<string | undefined>) => {
  const counts = new Map<string, number>()
  for (const n of assignment) if (n !== undefined) counts.set(n, (counts.get(n) ?? 0) + 1)
  return counts
}

/** Partitions whose owner differs between two assignments. */
const moved = (a: ReadonlyArray<string | undefined>, b: ReadonlyArray<string | undefined>) => a.filter((x, p) => b[p] !== x).length

describe("placement by rendezvous hashing with bounded loads", () => {
  it("gives every partition a live owner and every node ⌊P/N⌋ partitions, P mod N of them one more", () => {
    for (const partitions of [1, 7, 32, 64]) {
      for (let n = 1; n <= 10; n++) {
        const live = nodes(n, partitions)
        const assignment = owners(live, partitions)
        expect(assignment).toHaveLength(partitions)
        for (const owner of assignment) expect(live).toContain(owner)
        const floor = Math.floor(partitions / n)
        const counts = live.map((node) => loads(assignment).get(node) ?? 0)
        for (const c of counts) expect([floor, floor + 1]).toContain(c)
        expect(counts.filter((c) => c === floor + 1)).toHaveLength(partitions % n)
      }
    }
  })

  it("splits 32 partitions 8/8/8/8 over four workers whatever their ids (plain rendezvous hashing gave 14/8/7/3 in one scale-out run)", () => {
    // a node's id is its name and a random suffix (`Node.start`), as the bench's workers' are
    for (let run = 0; run < 50; run++) {
      const workers = [1, 2, 3, 4].map((i) => `bench-w${i}-${((run * 4 + i) * 2654435761 % 16777216).toString(16).padStart(6, "0")}`)
      expect(workers.map((w) => loads(owners(workers, 32)).get(w))).toEqual([8, 8, 8, 8])
    }
  })

  it("is the same whoever computes it: the order the nodes are listed in and repeats do not matter", () => {
    const live = nodes(5)
    const reference = owners(live, 32)
    expect(owners([...live].reverse(), 32)).toEqual(reference)
    expect(owners([live[3]!, ...live, live[0]!], 32)).toEqual(reference)
    expect(owners([], 4)).toEqual([undefined, undefined, undefined, undefined])
  })

  it("moves mostly what a join or a leave must (32 partitions, 2 to 8 nodes, 100 sets of names)", () => {
    let joins = 0
    let joinMoves = 0
    let newcomerShare = 0
    let leaves = 0
    let leaveMoves = 0
    let leaverShare = 0
    for (let salt = 0; salt < 100; salt++) {
      for (let n = 2; n <= 8; n++) {
        const live = nodes(n, salt)
        const before = owners(live, 32)
        // a join: the newcomer takes its share; the rest stay where they were, but for a few
        const joined = owners([...live, `newcomer-${salt}`], 32)
        expect(loads(joined).get(`newcomer-${salt}`)).toBeGreaterThanOrEqual(Math.floor(32 / (n + 1)))
        joins++
        joinMoves += moved(before, joined)
        newcomerShare += loads(joined).get(`newcomer-${salt}`)!
        // a leave: the leaver's partitions go to live nodes; the rest stay, but for a few
        const after = owners(live.slice(1), 32)
        for (const owner of after) expect(live.slice(1)).toContain(owner)
        leaves++
        leaveMoves += moved(before, after)
        leaverShare += loads(before).get(live[0]!)!
      }
    }
    // measured: 1.74 partitions more than the newcomer's share, 1.51 more than the leaver's, on average
    expect((joinMoves - newcomerShare) / joins).toBeLessThan(2.5)
    expect((leaveMoves - leaverShare) / leaves).toBeLessThan(2.5)
  })
})
