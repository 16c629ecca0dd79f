/**
 * The ack floors of a node's partition consumers (stream sequences: below a consumer's floor
 * every message is acked), as the actor host prunes its record of applied sequences by them.
 *
 * An ack that a consumer's leader took but had not yet replicated is lost when that server
 * dies (a NATS server restart), and its message is delivered again, although the leader had
 * reported a floor past it. So pruning uses the floor as it was `lagMs` ago: a sequence acked
 * in the last seconds is still recognised when it comes back. (Seen in the fault test, once
 * in about ten runs: a campaign counted one contact's completion twice, and so completed
 * before its last contact did.)
 */

/** The floors of every partition, by when they were read. */
export interface AckFloors {
  /** Records the floor just read for `partition`. */
  readonly record: (partition: number, floor: number) => void
  /** The highest floor of `partition` read at least `lagMs` ago (0 if none is that old). */
  readonly safe: (partition: number) => number
  /** Forgets a partition (this node stopped consuming it). */
  readonly forget: (partition: number) => void
}

/** Floors kept long enough to answer `safe` with a floor at least `lagMs` old. */
export const make = (lagMs: number, now: () => number = Date.now): AckFloors => {
  const samples = new Map<number, Array<{ readonly at: number; readonly floor: number }>>()
  return {
    record: (partition, floor) => {
      const t = now()
      const list = samples.get(partition) ?? []
      list.push({ at: t, floor })
      // keep the newest sample that is old enough, and those after it
      while (list.length > 1 && t - list[1]!.at >= lagMs) list.shift()
      samples.set(partition, list)
    },
    safe: (partition) => {
      const t = now()
      let floor = 0
      for (const s of samples.get(partition) ?? []) if (t - s.at >= lagMs) floor = Math.max(floor, s.floor)
      return floor
    },
    forget: (partition) => void samples.delete(partition)
  }
}
