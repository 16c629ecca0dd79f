/**
 * Rendezvous placement: partitions spread over nodes, and a node leaving moves only the
 * partitions it held (bounded moves); a node joining takes only partitions it now wins.
 */
import { describe, expect, it } from "vitest"
import { ownerOf } from "../../runtime/internal/Placement.js"

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `worker-${i}-${(i * 7919).toString(16)}`)

describe("rendezvous placement", () => {
  it("spreads 64 partitions over 4 nodes with none starved", () => {
    const counts = new Map<string, number>()
    for (let p = 0; p < 64; p++) counts.set(ownerOf(nodes(4), p)!, (counts.get(ownerOf(nodes(4), p)!) ?? 0) + 1)
    expect(counts.size).toBe(4)
    for (const c of counts.values()) expect(c).toBeGreaterThanOrEqual(6)
  })

  it("moves only the leaving node's partitions, and a joining node takes only what it wins", () => {
    const before = nodes(4)
    const after = before.filter((n) => n !== before[2])
    for (let p = 0; p < 256; p++) {
      const was = ownerOf(before, p)
      if (was !== before[2]) expect(ownerOf(after, p), `partition ${p}`).toBe(was)
      else expect(after).toContain(ownerOf(after, p))
    }
    const joined = [...before, "worker-new"]
    for (let p = 0; p < 256; p++) {
      const now = ownerOf(joined, p)
      if (now !== "worker-new") expect(now, `partition ${p}`).toBe(ownerOf(before, p))
    }
  })
})
