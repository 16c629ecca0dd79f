/**
 * Errors of the storage folder. Foreign errors (`SqlError` from @effect/sql, pg driver
 * errors, PGlite failures, row decode failures) are converted here, at the adapter edge,
 * into one `StorageError` whose `retryable` says whether trying again can help.
 */
import { Data } from "effect"

/** Why a storage operation failed. */
export type StorageErrorReason =
  /** The database could not be reached, or the connection broke (retryable). */
  | "Unavailable"
  /** A transient conflict: serialization failure, deadlock, lock timeout (retryable). */
  | "Conflict"
  /** A constraint or data rule was violated: retrying the same write cannot help. */
  | "Constraint"
  /** A row did not match the schema it is read into. */
  | "Decode"
  /** The schema migration failed. */
  | "Migration"
  /** The embedded engine (PGlite or its socket server) failed. */
  | "Embedded"
  /** A privilege or row-level security rule refused the operation (another tenant's row, no tenant set). */
  | "Forbidden"
  /** The request itself is wrong (dimension mismatch, unknown node, bad option): retrying cannot help. */
  | "Invalid"
  /** Anything else (bad SQL, unknown driver error). */
  | "Unknown"

/** A failed storage operation; `retryable` tells supervisors whether to try again. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly operation: string
  readonly reason: StorageErrorReason
  readonly retryable: boolean
  readonly message: string
  readonly cause?: unknown
}> {}

const retryableReasons: ReadonlySet<StorageErrorReason> = new Set(["Unavailable", "Conflict"])

/** Node socket error codes that mean "the server is not there (yet)". */
const networkCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN"
])

/** The SQLSTATE (e.g. `23505`) or Node error code carried by an error or its causes. */
export const codeOf = (e: unknown): string | undefined => {
  let current: unknown = e
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/** Classifies a SQLSTATE or Node error code into a reason. */
export const classify = (code: string | undefined): StorageErrorReason => {
  if (code === undefined) return "Unknown"
  if (networkCodes.has(code)) return "Unavailable"
  // 08: connection exception; 53: insufficient resources; 57P0x: server shutting down
  if (code.startsWith("08") || code.startsWith("53") || /^57P0[1-3]$/.test(code)) return "Unavailable"
  // 40001 serialization failure, 40P01 deadlock, 55P03 lock not available
  if (code === "40001" || code === "40P01" || code === "55P03") return "Conflict"
  // 23: integrity constraint violation; 22: data exception
  if (code.startsWith("23") || code.startsWith("22")) return "Constraint"
  // 42501 insufficient privilege, also raised for a row that violates a row-level security policy
  if (code === "42501") return "Forbidden"
  return "Unknown"
}

const messageOf = (e: unknown): string => {
  if (typeof e === "object" && e !== null) {
    const own = (e as { message?: unknown }).message
    const inner = (e as { cause?: { message?: unknown } }).cause?.message
    // SqlError's own message is generic ("Failed to execute statement"); the driver's says why
    if (typeof inner === "string" && inner.length > 0) {
      return typeof own === "string" && own.length > 0 ? `${own}: ${inner}` : inner
    }
    if (typeof own === "string" && own.length > 0) return own
  }
  return String(e)
}

/** Makes a `StorageError` for a reason, deriving `retryable` from it. */
export const make = (
  operation: string,
  reason: StorageErrorReason,
  message: string,
  cause?: unknown
): StorageError =>
  new StorageError({ operation, reason, retryable: retryableReasons.has(reason), message, cause })

/**
 * Whether the driver could not hand out a connection (@effect/sql-pg's "Failed to acquire
 * connection"): whatever its code (refused, too many clients, a database not accepting
 * connections, 55000), the database is unavailable to this node for now.
 */
const acquireFailed = (e: unknown): boolean => {
  const message = (e as { message?: unknown } | null)?.message
  return typeof message === "string" && message.startsWith("Failed to acquire connection")
}

/** Converts any foreign error (SqlError, pg, PGlite) raised by `operation`. */
export const fromCause = (operation: string) => (cause: unknown): StorageError =>
  make(operation, acquireFailed(cause) ? "Unavailable" : classify(codeOf(cause)), `${operation}: ${messageOf(cause)}`, cause)

/** Converts a row that failed to decode (`ParseError`). */
export const decode = (operation: string) => (cause: unknown): StorageError =>
  make(operation, "Decode", `${operation}: row does not match its schema: ${messageOf(cause)}`, cause)

/** A request that cannot succeed as given (not retryable). */
export const invalid = (operation: string, message: string): StorageError =>
  make(operation, "Invalid", `${operation}: ${message}`)

/** Converts a failure to connect: always `Unavailable`, so retryable. */
export const unavailable = (operation: string) => (cause: unknown): StorageError =>
  make(operation, "Unavailable", `${operation}: ${messageOf(cause)}`, cause)

/** Converts whatever a storage operation failed with: kept if already a `StorageError`, else classified. */
export const refine = (operation: string) => (cause: unknown): StorageError => {
  if (cause instanceof StorageError) return cause
  if ((cause as { _tag?: unknown } | null)?._tag === "ParseError") return decode(operation)(cause)
  return fromCause(operation)(cause)
}
