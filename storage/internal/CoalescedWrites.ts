/**
 * The writes a Postgres connection makes in one run of the microtask queue leave as one.
 *
 * `pg` writes every protocol message to the socket as it is issued (a prepared statement's
 * Parse/Bind/Describe/Execute/Sync are corked together; separate queries are not). With
 * pipelining, a tenant scope's opening (`BEGIN; set_config…`), its statement and its `COMMIT`
 * are issued back to back (see `Tenancy`), and each was a write of its own, a system call
 * that also wakes the server. Here the first write corks the socket and a `process.nextTick`
 * uncorks it: Node runs that tick as soon as the callback or the drain of the microtask
 * queue that wrote is done, so what it wrote goes out together, and nothing waits for
 * another turn of the event loop.
 *
 * Measured on 2 cores (in-process 2,500-contact campaigns as `bench/profile.ts` runs them,
 * interleaved, CPU read from `/proc` for every process): socket writes per tenant-scoped
 * read 3 → 1; Postgres CPU per contact 1.37–1.49 → 1.25–1.30 ms, machine CPU per contact
 * 10.7–12.0 → 10.2 ms, 128–144 → 149 contacts/s.
 */
import type { Duplex } from "node:stream"

/** Makes `socket` coalesce the writes of one microtask drain; false (nothing changed) if it cannot cork. */
export const coalesceWrites = (socket: unknown): boolean => {
  const s = socket as Partial<Duplex> | null | undefined
  if (typeof s?.write !== "function" || typeof s.cork !== "function" || typeof s.uncork !== "function") return false
  const stream = s as Duplex
  const write = stream.write
  let corked = false
  const uncork = () => {
    corked = false
    stream.uncork()
  }
  stream.write = function (this: Duplex, ...args: Array<any>) {
    if (!corked && !stream.destroyed) {
      corked = true
      stream.cork()
      process.nextTick(uncork)
    }
    return (write as (...a: Array<any>) => boolean).apply(this, args)
  } as Duplex["write"]
  return true
}
