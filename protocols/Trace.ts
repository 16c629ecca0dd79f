/**
 * W3C trace context (`traceparent`) as carried in every envelope: parsing it into the
 * ids a tracer needs to continue the trace, and formatting ids back into a header.
 */

/** The parts of a `traceparent` header. */
export interface TraceParent {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

const re = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** Parses a `traceparent`; undefined when it is not a valid version-00 header. */
export const parse = (traceparent: string): TraceParent | undefined => {
  const m = re.exec(traceparent)
  if (m === null || m[2] === "0".repeat(32) || m[3] === "0".repeat(16)) return undefined
  return { traceId: m[2]!, spanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1 }
}

/** Formats a `traceparent` from a trace and span id. */
export const format = (traceId: string, spanId: string, sampled = true): string =>
  `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`
