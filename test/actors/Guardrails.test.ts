/**
 * Dispatch guardrails through the real runtime on NATS: quiet hours in each contact's own
 * zone defer a step, and the scheduler wakes it when the window opens; an opt-out during a
 * multi-touch sequence stops it and keeps the contact out of later campaigns; a reply stops
 * the sequence; the do-not-contact list skips a contact.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as DispatchPolicy from "../../actors/guardrails/DispatchPolicy.js"
import * as QuietHours from "../../actors/guardrails/QuietHours.js"
import { Campaign, Dispatch, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Events from "../fixtures/CampaignEvents.js"
import * as Crm from "../fixtures/Crm.js"
import { snapshot } from "../fixtures/Contacts.js"

const policy = Ref.unsafeMake<DispatchPolicy.PolicySettings>(DispatchPolicy.anyTime)

const contact = (id: string, timezone: string, over: Partial<Campaign.ContactSnapshot> = {}) =>
  snapshot(id, { email: `${id}@guard.example`, company: "Guard Labs", timezone, ...over })

const start = (tenant: Ids.TenantId, id: string, goal: string, channels: [Campaign.Channel, ...Array<Campaign.Channel>]) =>
  Crm.publishCommand(tenant, Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(id),
    name: id,
    goal,
    audience: {},
    channels,
    targetCount: 50,
    budget: { maxActions: 100, maxCostUsd: 10 }
  })
const completed = (es: ReadonlyArray<Events.StoredEvent>) => es.some((e) => e.type === "event.campaign-completed")
const terminal = (es: ReadonlyArray<Events.StoredEvent>) =>
  new Map(
    es.filter((e) => e.type === "event.contact-progress" && e.payload.phase === "completed").map((e) => [e.payload.contactId as string, e.payload])
  )
const hhmmss = (seconds: number) => {
  const s = ((Math.floor(seconds) % 86400) + 86400) % 86400
  return [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, "0")).join(":")
}

layer(Crm.layer({}, { policy: DispatchPolicy.layerRef(policy) }), { timeout: 90_000, excludeTestServices: true })("dispatch guardrails over NATS", (it) => {
  it.scoped("quiet hours defer a contact to its own window opening; the scheduler wakes it", () =>
    Effect.gen(function* () {
      const tenant = Ids.TenantId.make("quiet")
      // a window opening 3 s from now in UTC: Karachi (UTC+5, no DST) is inside it, UTC is not yet
      const now = Date.now()
      const utc = QuietHours.local(now, "UTC")
      const opens = utc.hour * 3600 + utc.minute * 60 + utc.second + 4
      yield* Ref.set(policy, { ...DispatchPolicy.anyTime, quietHours: { voice: null, sms: null, email: { start: hhmmss(opens), end: hhmmss(opens + 10 * 3600) } } })
      yield* (yield* ContactRepo).insertMany(tenant, [contact("q-karachi", "Asia/Karachi"), contact("q-utc", "UTC")])
      yield* Node.start(CrmApp.nodeOptions)
      yield* start(tenant, "cmp-quiet", "email our leads", ["email"])
      const events = yield* Events.until("quiet campaign completed", tenant, "cmp-quiet", completed, 30_000)
      const deferred = Events.ofType(events, "event.contact-deferred").map((e) => e.payload)
      expect(deferred.map((d) => d.contactId)).toEqual(["q-utc"])
      expect(deferred[0]!.reason).toBe("quiet-hours:UTC")
      expect(deferred[0]!.until).toBeGreaterThan(now)
      expect(deferred[0]!.until).toBeLessThan(now + 8_000)
      const done = terminal(events)
      expect(done.get("q-utc")?.status).toBe("reached")
      expect(done.get("q-karachi")?.status).toBe("reached")
      // the deferred contact was delivered only after its window opened
      const deliveries = yield* (yield* DeliveryLedger).byCampaign(tenant, Ids.CampaignId.make("cmp-quiet"))
      const late = deliveries.find((d) => d.contactId === "q-utc")!
      expect(late.createdAt.getTime()).toBeGreaterThanOrEqual(deferred[0]!.until - 5)
      yield* Ref.set(policy, DispatchPolicy.anyTime)
    })
  )

  it.scoped("a reply stops the sequence; an opt-out stops it and keeps the contact out of the next campaign", () =>
    Effect.gen(function* () {
      const tenant = Ids.TenantId.make("seq")
      yield* Ref.set(policy, { ...DispatchPolicy.anyTime, doNotContact: new Set(["s-dnc@guard.example"]) })
      const ids = ["s-a", "s-reply", "s-optout", "s-dnc"]
      yield* (yield* ContactRepo).insertMany(tenant, ids.map((id) => contact(id, "Europe/Berlin")))
      yield* Node.start(CrmApp.nodeOptions)
      yield* start(tenant, "cmp-seq", "email our leads and follow up by sms after 3 seconds", ["email", "sms"])
      // all three reachable contacts wait for their second touch
      yield* Events.until("second touches scheduled", tenant, "cmp-seq", (es) =>
        Events.ofType(es, "event.contact-deferred").filter((e) => e.payload.reason === "next-touch").length === 3
      )
      const inbound = (contactId: string, kind: Dispatch.InboundKind) =>
        Crm.publishCommand(tenant, Dispatch.ContactInbound, {
          contactId: Ids.ContactId.make(contactId),
          campaignId: null,
          kind,
          channel: "email",
          text: kind === "reply" ? "Sounds interesting, send me pricing" : "STOP",
          at: Date.now()
        })
      yield* inbound("s-reply", "reply")
      yield* inbound("s-optout", "opt-out")
      const events = yield* Events.until("sequence campaign completed", tenant, "cmp-seq", completed, 30_000)
      const done = terminal(events)
      expect(done.get("s-reply")).toMatchObject({ status: "reached", reason: "replied" })
      expect(done.get("s-optout")).toMatchObject({ reason: "unsubscribed" })
      expect(done.get("s-dnc")).toMatchObject({ status: "skipped", reason: "do-not-contact" })
      expect(done.get("s-a")?.status).toBe("reached")
      const deliveries = yield* (yield* DeliveryLedger).byCampaign(tenant, Ids.CampaignId.make("cmp-seq"))
      const touches = (id: string) => deliveries.filter((d) => d.contactId === id).map((d) => d.channel)
      expect(touches("s-a")).toEqual(["email", "sms"])
      expect(touches("s-reply")).toEqual(["email"])
      expect(touches("s-optout")).toEqual(["email"])
      expect(touches("s-dnc")).toEqual([])

      // the opt-out is remembered by the contact: the next campaign skips it
      yield* start(tenant, "cmp-next", "email our leads", ["email"])
      const next = terminal(yield* Events.until("next campaign completed", tenant, "cmp-next", completed))
      expect(next.get("s-optout")).toMatchObject({ status: "skipped", reason: "opted-out" })
      expect(next.get("s-reply")?.status).toBe("reached")
      yield* Ref.set(policy, DispatchPolicy.anyTime)
    })
  )
})
