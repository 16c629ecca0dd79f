/**
 * Building a command as an external system would: a complete envelope addressed to the
 * command router, with a fresh id (or one you choose, to make a retry idempotent) and a
 * new trace. Used by the demo, the CLI, the gateway and tests.
 */
import { randomBytes } from "node:crypto"
import * as Address from "./Address.js"
import type { Envelope } from "./Envelope.js"
import type { TenantId } from "./Ids.js"
import type { MessageType, Registry } from "./Message.js"
import type { Subjects } from "./Subjects.js"

/** A command ready to publish. */
export interface EncodedCommand {
  readonly subject: string
  readonly id: string
  readonly data: Uint8Array
}

/** Encodes a command envelope for `def` on the tenant's command subject. */
export const make = <A, I>(
  subjects: Subjects,
  registry: Registry,
  tenant: TenantId,
  def: MessageType<A, I>,
  payload: A,
  options: {
    readonly id?: string
    readonly from?: string
    /** W3C traceparent of the caller's span (default: a new trace). */
    readonly traceparent?: string
  } = {}
): EncodedCommand => {
  const id = options.id ?? randomBytes(16).toString("base64url")
  const envelope: Omit<Envelope, "payload" | "type" | "v"> = {
    id: id as Envelope["id"],
    tenant,
    from: Address.ext(options.from ?? "client"),
    to: Address.ext("command-router"),
    correlationId: id,
    causationId: null,
    ts: Date.now(),
    trace: {
      traceparent: options.traceparent ?? `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`
    }
  }
  return { subject: subjects.command(tenant, def.type), id, data: registry.encode(envelope, def, payload) }
}
