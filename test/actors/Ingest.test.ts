/**
 * Ingestion over real NATS: external events published as commands (as a CRM, mail gateway
 * or telephony system would) pass the command router to the ingest agent, which writes
 * records, episodes, graph edges and vectors to a real Postgres database. Publishing the
 * same events again, under new envelope ids (so JetStream de-duplication cannot hide them)
 * and under the same ids, changes nothing.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as DispatchPolicy from "../../actors/guardrails/DispatchPolicy.js"
import * as IngestAgent from "../../actors/IngestAgent.js"
import { Deployment } from "../../nats/index.js"
import { Ids, Inbound, type Message } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { EpisodicMemory } from "../../storage/EpisodicMemory.js"
import { Ingestion } from "../../storage/Ingestion.js"
import * as Crm from "../fixtures/Crm.js"
import * as Knowledge from "../fixtures/Knowledge.js"
import * as NatsFixture from "../fixtures/Nats.js"
import * as Postgres from "../fixtures/Postgres.js"

// one database build shared by the services and the test's own queries
const db = Postgres.layerFresh
const nats = Deployment.layer.pipe(Layer.provideMerge(NatsFixture.layer()))
const Env = CrmApp.services(db, { policy: DispatchPolicy.layerWith(DispatchPolicy.anyTime) }).pipe(
  Layer.provideMerge(nats),
  Layer.provideMerge(db)
)

const tenant = Ids.TenantId.make("ingest-nats")
const events = Knowledge.sampleEvents(Date.parse("2026-11-20T12:00:00Z"))
const defOf = (type: string): Message.MessageType => Inbound.all.find((d) => d.type === type)!

const publishAll = (prefix: string) =>
  Effect.forEach(events, (e) => Crm.publishCommand(tenant, defOf(e.type), e.payload, `${prefix}-${e.payload.eventId}`), { discard: true })

layer(Env, { timeout: 90_000, excludeTestServices: true })("ingestion over NATS", (it) => {
  it.scoped("inbound events reach the ingest agent through the command router, and a repeat changes nothing", () =>
    Effect.gen(function* () {
      const node = yield* Node.start({ registry: CrmApp.registry, actors: [], agents: [IngestAgent.ingest], commands: CrmApp.commands })
      const ingestion = yield* Ingestion

      yield* publishAll("first")
      yield* Crm.waitFor(
        "every event ingested",
        Effect.map(Effect.forEach(events, (e) => ingestion.processed(tenant, e.payload.eventId)), (done) => (done.every(Boolean) ? true : undefined)),
        60_000
      )
      const before = yield* Knowledge.snapshot(tenant)
      expect(before.events.length).toBe(events.length)
      expect(before.episodes.length).toBe(3)
      expect(before.edges.length).toBeGreaterThan(10)
      expect(before.vectors.length).toBe(6)

      // provenance: the sender, via the ingest agent, under the envelope's trace
      const memory = yield* EpisodicMemory
      const email = Option.getOrThrow(yield* memory.get(tenant, "email-em-1"))
      expect([email.recordedBy, email.viaAgent]).toEqual(["ext:client", "ingest"])
      expect(email.traceId).toMatch(/^[0-9a-f]{32}$/)

      // each event is handled twice: by the router, then by the agent
      yield* publishAll("second") // new envelope ids: delivered again, ingestion must see the same events
      yield* publishAll("first") // same ids: JetStream drops them within its de-duplication window
      yield* Crm.waitFor(
        "the re-sent events handled by router and agent",
        Effect.sync(() => (node.counters.handled >= 4 * events.length ? true : undefined)),
        60_000
      )
      expect(yield* Knowledge.snapshot(tenant)).toEqual(before)
      expect(node.counters.deadLetters).toBe(0)
    })
  )
})
