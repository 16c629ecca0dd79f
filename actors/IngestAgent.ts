/**
 * The ingest agent: external events (email received, call ended, meeting held, CRM record
 * changed; `protocols/Inbound.ts`) into the knowledge store. External systems publish them
 * as commands on `<p>.<tenant>.cmd.inbound.<kind>`; the command router checks them like any
 * command (decodes, dead-letters bad input) and forwards them to this agent's work queue,
 * so senders need to know neither agents nor partitions.
 *
 * Ingestion is idempotent by the sender's event id (see `storage/Ingestion.ts`): a
 * redelivery, or the same event re-sent under a new envelope id, changes nothing. Every
 * change is audited as made by the sender (the CRM user for record changes) via `ingest`,
 * with the envelope's trace id.
 */
import { Effect } from "effect"
import { Address, Inbound, type Message } from "../protocols/index.js"
import { Agent, type Node } from "../runtime/index.js"
import { Ingestion } from "../storage/Ingestion.js"
import * as Tenancy from "../storage/Tenancy.js"

/** The agent's name (its work queue). */
export const NAME = "ingest"

/** The ingest agent. */
export const ingest = Agent.make({
  name: NAME,
  accepts: Inbound.all,
  // events about one contact may arrive together; a small window keeps their writes mostly apart
  concurrency: 8,
  handle: Effect.fn("IngestAgent.handle")(function* (m: Message.Decoded, ctx: Agent.AgentContext) {
    const event = { type: m.type, payload: m.payload } as Inbound.InboundEvent
    const principal = event.type === "inbound.crm-record-changed" ? event.payload.changedBy : m.envelope.from
    const ingestion = yield* Ingestion
    yield* ingestion.ingest(ctx.tenant, event).pipe(
      Tenancy.withActor(Tenancy.agentActor(principal, NAME, m.envelope.trace.traceparent))
    )
  })
})

/** Routes for the command router: every inbound event type goes to the ingest agent. */
export const routes: ReadonlyArray<Node.CommandRoute> = Inbound.all.map((command) => ({
  command,
  to: () => Address.agent(NAME)
}))
