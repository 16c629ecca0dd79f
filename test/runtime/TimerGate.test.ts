/**
 * The fire gate of durable timers: at most the rate (after a small burst), and fires held
 * back get successive slots at the rate, so a flood of overdue timers comes back spread out.
 */
import { describe, expect, it } from "@effect/vitest"
import * as TimerGate from "../../runtime/internal/TimerGate.js"

describe("TimerGate", () => {
  it("lets a burst through, then gives each held-back fire its own slot at the rate", () => {
    const gate = TimerGate.make({ perSecond: 100, burst: 5, random: () => 0 })
    const waits = Array.from({ length: 10 }, () => gate.take(1_000))
    expect(waits.slice(0, 5), "the burst fires at once").toEqual([0, 0, 0, 0, 0])
    // 100/s: one slot every 10 ms, the first when the bucket holds a token again
    expect(waits.slice(5), "held back: successive slots").toEqual([10, 20, 30, 40, 50])
  })

  it("fires held-back timers when they come back at their slots, never above the rate", () => {
    const rate = 200
    const gate = TimerGate.make({ perSecond: rate, spreadMs: 50, random: Math.random })
    // 2,000 overdue timers arrive at once; each held-back one comes back at its wait
    const queue: Array<{ at: number }> = Array.from({ length: 2_000 }, () => ({ at: 0 }))
    const fired: Array<number> = []
    let attempts = 0
    while (queue.length > 0) {
      queue.sort((a, b) => a.at - b.at)
      const next = queue.shift()!
      attempts++
      const wait = gate.take(next.at)
      if (wait === 0) fired.push(next.at)
      else queue.push({ at: next.at + wait })
    }
    expect(fired.length).toBe(2_000)
    // in any second, at most the rate plus the burst (a tenth of a second's worth)
    let maxInSecond = 0
    for (let i = 0, j = 0; i < fired.length; i++) {
      while (fired[i]! - fired[j]! >= 1_000) j++
      maxInSecond = Math.max(maxInSecond, i - j + 1)
    }
    expect(maxInSecond, "fires in any one-second window").toBeLessThanOrEqual(rate + rate / 10)
    // spread, not stalled: done within 20% of the ideal time
    expect(fired[fired.length - 1]!, "time to fire all").toBeLessThan(((2_000 / rate) * 1_000) * 1.2)
    // few second tries: the slots match the refill
    expect(attempts / 2_000, "handlings per timer").toBeLessThan(2.5)
  })

  it("lets a steady trickle below the rate through untouched", () => {
    const gate = TimerGate.make({ perSecond: 10 })
    const waits = Array.from({ length: 50 }, (_, i) => gate.take(i * 200))
    expect(waits.every((w) => w === 0)).toBe(true)
  })
})
