/**
 * The in-process engine of the embedded vector store: exact cosine search over unit
 * vectors kept in one contiguous `Float32Array` per (tenant, collection), a bounded top-k
 * selection, and the float32 ⇄ bytea codec. An index mirrors the Postgres rows up to a
 * revision and is caught up by applying the rows written after it.
 */
import type { Filter, Match, Payload } from "../VectorStore.js"
import { matches } from "../VectorStore.js"

/** Encodes a vector as little-endian float32 bytes (the `bytea` column). */
export const toBytes = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength)

/** Decodes a `bytea` column into a vector (copied: driver buffers need not be 4-byte aligned). */
export const fromBytes = (b: Uint8Array): Float32Array => {
  const copy = new Uint8Array(b.byteLength)
  copy.set(b)
  return new Float32Array(copy.buffer)
}

/** Dot product of `q` with the vector stored at `offset` of `data` (every search path uses it, so scores agree). */
export const dotAt = (data: Float32Array, offset: number, q: Float32Array): number => {
  // four independent sums: the loop-carried dependency of one sum is what bounds the speed
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0
  const n = q.length - (q.length % 4)
  let j = 0
  for (; j < n; j += 4) {
    s0 += data[offset + j]! * q[j]!
    s1 += data[offset + j + 1]! * q[j + 1]!
    s2 += data[offset + j + 2]! * q[j + 2]!
    s3 += data[offset + j + 3]! * q[j + 3]!
  }
  for (; j < q.length; j++) s0 += data[offset + j]! * q[j]!
  return s0 + s1 + s2 + s3
}

/** Keeps the best `k` matches seen (score descending, then id ascending). */
export class TopK {
  private readonly items: Array<Match> = []
  constructor(private readonly k: number) {}
  /** The score a candidate must reach to be considered (−∞ until full). */
  get floor(): number {
    return this.items.length < this.k ? Number.NEGATIVE_INFINITY : this.items[this.items.length - 1]!.score
  }
  /** Offers a candidate; `payload` is read only if it makes the cut. */
  offer(id: string, score: number, payload: () => Payload): void {
    if (this.k <= 0) return
    const last = this.items[this.items.length - 1]
    if (this.items.length >= this.k && last !== undefined && (score < last.score || (score === last.score && id > last.id))) return
    let i = this.items.length
    while (i > 0) {
      const prev = this.items[i - 1]!
      if (prev.score > score || (prev.score === score && prev.id < id)) break
      i--
    }
    this.items.splice(i, 0, { id, score, payload: payload() })
    if (this.items.length > this.k) this.items.pop()
  }
  /** The matches kept, best first. */
  result(): ReadonlyArray<Match> {
    return this.items
  }
}

/** What a search asks of an index. */
export interface Query {
  readonly vector: Float32Array
  readonly limit: number
  readonly minScore: number
  readonly filter: Filter | undefined
  readonly exclude: ReadonlySet<string>
}

/** Scores one candidate against a query into a `TopK`. */
export const consider = (top: TopK, q: Query, id: string, score: number, payload: Payload): void => {
  if (score < q.minScore || score < top.floor) return
  if (q.exclude.has(id) || !matches(payload, q.filter)) return
  top.offer(id, score, () => payload)
}

/** The vectors of one tenant's collection, as of revision `rev`. */
export class VectorIndex {
  /** Highest revision applied. */
  rev = 0
  private data: Float32Array
  private readonly ids: Array<string | undefined> = []
  private readonly payloads: Array<Payload | undefined> = []
  private readonly slots = new Map<string, number>()
  private readonly free: Array<number> = []
  private payloadBytes = 0

  constructor(readonly dimension: number) {
    this.data = new Float32Array(dimension * 64)
  }

  /** Live points. */
  get size(): number {
    return this.slots.size
  }

  /** Approximate memory held, in bytes. */
  get bytes(): number {
    return this.data.byteLength + this.payloadBytes + this.ids.length * 64
  }

  /** Applies one row: a vector and payload, or null for a removed point. */
  apply(id: string, vector: Float32Array | null, payload: Payload, rev: number): void {
    if (rev > this.rev) this.rev = rev
    const slot = this.slots.get(id)
    if (vector === null) {
      if (slot === undefined) return
      this.slots.delete(id)
      this.payloadBytes -= JSON.stringify(this.payloads[slot] ?? {}).length * 2
      this.ids[slot] = undefined
      this.payloads[slot] = undefined
      this.free.push(slot)
      return
    }
    if (slot !== undefined) this.payloadBytes -= JSON.stringify(this.payloads[slot] ?? {}).length * 2
    const at = slot ?? this.free.pop() ?? this.ids.length
    if ((at + 1) * this.dimension > this.data.length) {
      const grown = new Float32Array(Math.max(this.data.length * 2, (at + 1) * this.dimension))
      grown.set(this.data)
      this.data = grown
    }
    this.data.set(vector, at * this.dimension)
    this.ids[at] = id
    this.payloads[at] = payload
    this.payloadBytes += JSON.stringify(payload).length * 2
    this.slots.set(id, at)
  }

  /** The stored vector of a point. */
  vectorOf(id: string): Float32Array | undefined {
    const slot = this.slots.get(id)
    return slot === undefined ? undefined : this.data.slice(slot * this.dimension, (slot + 1) * this.dimension)
  }

  /** The payload of a point. */
  payloadOf(id: string): Payload | undefined {
    const slot = this.slots.get(id)
    return slot === undefined ? undefined : this.payloads[slot]
  }

  /** Exact search over every live point. */
  search(q: Query): ReadonlyArray<Match> {
    const top = new TopK(q.limit)
    const n = this.ids.length
    for (let slot = 0; slot < n; slot++) {
      const id = this.ids[slot]
      if (id === undefined) continue
      const score = dotAt(this.data, slot * this.dimension, q.vector)
      if (score < q.minScore || score < top.floor) continue
      consider(top, q, id, score, this.payloads[slot]!)
    }
    return top.result()
  }
}
