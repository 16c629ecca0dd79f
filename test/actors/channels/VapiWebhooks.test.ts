/**
 * Voice calls end to end on NATS with Vapi behind the live channel (a loopback server
 * playing Vapi's API to the real SDK): a contact's call is placed with its metadata, and
 * its outcome arrives as inbound webhook messages, published duplicated and out of order.
 * Each contact completes exactly once, with the outcome of the end-of-call report; a
 * `status-update: ended` alone completes nothing; an event without metadata is routed by
 * the call id recorded in the attempt ledger, and the report frees the attempt.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import * as LiveChannels from "../../../actors/channels/LiveChannels.js"
import * as VapiVoice from "../../../actors/channels/VapiVoice.js"
import { CrmApp } from "../../../actors/index.js"
import { Campaign, Ids, Vapi } from "../../../protocols/index.js"
import { Node } from "../../../runtime/index.js"
import { AttemptLedger } from "../../../storage/AttemptLedger.js"
import { ContactRepo } from "../../../storage/ContactRepo.js"
import * as Events from "../../fixtures/CampaignEvents.js"
import * as Crm from "../../fixtures/Crm.js"
import * as ProviderServer from "../../fixtures/ProviderServer.js"
import { snapshot } from "../../fixtures/Contacts.js"

const tenant = Ids.TenantId.make("vapi")
const campaignId = "cmp-voice"
let vapi: ProviderServer.ProviderServer | undefined

// the Vapi API on loopback: every created call gets the id `call-<contactId>`
const channels = Layer.unwrapScoped(
  Effect.map(
    ProviderServer.start((req) =>
      req.method === "POST" && req.path === "/call"
        ? { status: 201, body: { id: `call-${req.body.metadata.contactId}`, orgId: "org", status: "queued", createdAt: "2026-11-21T12:00:00.000Z", updatedAt: "2026-11-21T12:00:00.000Z" } }
        : { status: 404, body: {} }
    ),
    (server) => {
      vapi = server
      return LiveChannels.layer([VapiVoice.make({ apiKey: Redacted.make("vapi-test"), baseUrl: server.url, phoneNumberId: "pn-1", assistantId: "asst-1", maxConcurrent: 10 })])
    }
  )
)

const contact = (id: string) =>
  snapshot(id, {
    name: `Caller ${id}`,
    email: null,
    phone: "+15550100123",
    company: "Voice Co",
    title: "VP Sales",
    region: "North America",
    timezone: "America/Chicago",
    leadScore: 85,
    consent: { voice: true, email: false, sms: false }
  })

const keyOf = (id: string) => `${tenant}/${campaignId}/${id}/1/voice`
const status = (id: string, s: string, withMeta = true) =>
  Crm.publishCommand(tenant, Vapi.CallStatusChanged, {
    callId: `call-${id}`,
    status: s,
    campaignId: withMeta ? campaignId : null,
    contactId: withMeta ? id : null,
    idempotencyKey: withMeta ? keyOf(id) : null,
    at: Date.now()
  })
const ended = (id: string, endedReason: string, transcript: string | null, withMeta = true) =>
  Crm.publishCommand(tenant, Vapi.CallEnded, {
    callId: `call-${id}`,
    campaignId: withMeta ? campaignId : null,
    contactId: withMeta ? id : null,
    idempotencyKey: withMeta ? keyOf(id) : null,
    endedReason,
    durationSec: transcript ? 140 : 18,
    costUsd: 0.21,
    transcript,
    summary: transcript ? "asked for pricing and a demo" : null,
    endedAt: "2026-11-21T12:05:00.000Z",
    at: Date.now()
  })

layer(Crm.layer({}, { channels }), { timeout: 60_000, excludeTestServices: true })("Vapi webhooks over NATS", (it) => {
  it.scoped("duplicated and out-of-order webhook events complete each call once, from its end-of-call report", () =>
    Effect.gen(function* () {
      yield* (yield* ContactRepo).insertMany(tenant, ["v-a", "v-b", "v-c"].map(contact))
      yield* Node.start(CrmApp.nodeOptions)
      yield* Crm.publishCommand(tenant, Campaign.StartCampaign, {
        campaignId: Ids.CampaignId.make(campaignId),
        name: "voice",
        goal: "call our leads",
        audience: {},
        channels: ["voice"],
        targetCount: 10,
        budget: { maxActions: 10, maxCostUsd: 10 }
      })
      const ledger = yield* AttemptLedger
      yield* Crm.waitFor("three calls placed", Effect.gen(function* () {
        const refs = yield* Effect.forEach(["v-a", "v-b", "v-c"], (id) => ledger.get(tenant, keyOf(id)))
        return refs.every((r) => Option.isSome(r) && r.value.providerRef !== null) ? true : undefined
      }))
      const create = vapi!.requests.find((r) => r.body?.metadata?.contactId === "v-a")!
      expect(create.body.assistantOverrides.variableValues.script).toMatch(/AI assistant/)

      // v-a: the report first, then late statuses, then the report again
      yield* ended("v-a", "customer-ended-call", "User: What does the pricing look like? Could we set up a demo next week?")
      yield* status("v-a", "in-progress")
      yield* ended("v-a", "customer-ended-call", "User: What does the pricing look like? Could we set up a demo next week?")
      yield* status("v-a", "ringing")
      // v-b: statuses only, including `ended`: not the truth, nothing completes
      yield* status("v-b", "ringing")
      yield* status("v-b", "ended")
      yield* status("v-b", "in-progress")
      // v-c: no metadata at all: routed by the call id in the attempt ledger
      yield* ended("v-c", "voicemail", null, false)
      yield* ended("v-c", "voicemail", null, false)

      const partial = yield* Events.until("v-a and v-c completed", tenant, campaignId, (es) =>
        es.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "completed").length === 2
      )
      const done = (es: ReadonlyArray<Events.StoredEvent>) =>
        es.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "completed").map((e) => e.payload)
      expect(done(partial).map((p) => p.contactId).sort()).toEqual(["v-a", "v-c"])
      yield* Effect.sleep("500 millis")
      expect(done(yield* Events.of(tenant, campaignId)).some((p) => p.contactId === "v-b")).toBe(false)

      yield* ended("v-b", "customer-did-not-answer", null)
      yield* ended("v-b", "customer-did-not-answer", null)
      const events = yield* Events.until("campaign completed", tenant, campaignId, (es) => es.some((e) => e.type === "event.campaign-completed"))
      const terminal = done(events)
      expect(terminal).toHaveLength(3)
      const byId = new Map(terminal.map((p) => [p.contactId, p]))
      expect(byId.get("v-a")!.status).toBe("converted") // the report's transcript asked for a demo
      expect(byId.get("v-b")).toMatchObject({ status: "failed", reason: "not-reached:no-answer" })
      expect(byId.get("v-c")!.status).toBe("reached") // voicemail
      // one analysis per call, one create per contact
      const analysed = events.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "analysed")
      expect(analysed).toHaveLength(3)
      expect(vapi!.requests.filter((r) => r.method === "POST")).toHaveLength(3)
      // the reports finished the attempts (freeing the account's concurrency)
      for (const id of ["v-a", "v-b", "v-c"]) expect(Option.getOrThrow(yield* ledger.get(tenant, keyOf(id))).status).toBe("done")
      const summary = events.find((e) => e.type === "event.campaign-completed")!.payload.summary
      expect(summary.perChannel.voice).toEqual({ attempted: 3, reached: 2 })
    })
  )
})
