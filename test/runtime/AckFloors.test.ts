/**
 * The ack floors the actor host prunes by: only a floor read at least the lag ago counts, so
 * a sequence acked just before a consumer leader died (its ack lost, the message delivered
 * again) is still in an actor's record of applied sequences when it comes back.
 */
import { describe, expect, it } from "vitest"
import * as AckFloors from "../../runtime/internal/AckFloors.js"

describe("AckFloors", () => {
  it("answers the highest floor read at least the lag ago, per partition", () => {
    let t = 0
    const floors = AckFloors.make(5_000, () => t)
    expect(floors.safe(0)).toBe(0)
    floors.record(0, 100)
    t = 1_000
    floors.record(0, 250)
    floors.record(1, 900)
    expect(floors.safe(0), "nothing is old enough yet").toBe(0)
    t = 5_000
    expect(floors.safe(0), "the first read is 5 s old").toBe(100)
    expect(floors.safe(1)).toBe(0)
    t = 6_000
    floors.record(0, 400)
    expect(floors.safe(0)).toBe(250)
    expect(floors.safe(1)).toBe(900)
    t = 11_000
    expect(floors.safe(0)).toBe(400)
  })

  it("with a floor read every second for an hour, the floor of 5 s before; forgetting starts over", () => {
    let t = 0
    const floors = AckFloors.make(5_000, () => t)
    for (let i = 0; i < 3_600; i++) {
      t = i * 1_000
      floors.record(0, i)
    }
    expect(floors.safe(0)).toBe(3_594)
    // the record is small: forgetting and re-reading starts over
    floors.forget(0)
    expect(floors.safe(0)).toBe(0)
  })

  it("a sequence acked moments before is not pruned: the lost-ack case", () => {
    let t = 0
    const floors = AckFloors.make(5_000, () => t)
    const applied = [41, 42, 43]
    for (; t <= 10_000; t += 1_000) floors.record(0, 40)
    // the leader reports 43 acked, then dies before replicating the ack; 43 comes back
    floors.record(0, 43)
    t += 500
    const kept = applied.filter((q) => q > floors.safe(0))
    expect(kept).toEqual([41, 42, 43])
  })
})
