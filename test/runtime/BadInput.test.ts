/**
 * Bad input (invariant 7): malformed JSON, invalid envelopes, schema-invalid payloads,
 * unknown types, tenant mismatches and misdirected messages on command, mailbox and agent
 * subjects each become a dead-letter record with a typed reason and the original bytes;
 * nothing crashes, nothing stays unacknowledged, and the node keeps serving.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Campaign, Command, Ids } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Crm from "../fixtures/Crm.js"

const tenant = Ids.TenantId.make("acme")

const validStart = (campaignId: string) => ({
  campaignId: Ids.CampaignId.make(campaignId),
  name: "after bad input",
  goal: "email 5 leads",
  audience: {},
  channels: ["email"] as const,
  targetCount: 5,
  budget: { maxActions: 10, maxCostUsd: 1 }
})

layer(Crm.layer(), { timeout: 60_000, excludeTestServices: true })("bad input", (it) => {
  it.scoped("every kind of bad message is dead-lettered with a typed reason and the node keeps serving", () =>
    Effect.gen(function* () {
      yield* DemoData.load(tenant, 40, 3)
      const node = yield* Node.start(CrmApp.nodeOptions)
      const { subjects } = yield* Deployment.Deployment
      const { jsm } = yield* NatsClient
      const cmdSubject = subjects.command(tenant, "campaign.start")
      const valid = Command.make(subjects, CrmApp.registry, tenant, Campaign.StartCampaign, validStart("cmp-x"))
      const validJson = JSON.parse(new TextDecoder().decode(valid.data))

      const cases: Array<{ name: string; subject: string; data: string; reason: string; receiver: string }> = [
        { name: "malformed JSON", subject: cmdSubject, data: '{"id": "x", "type": ', reason: "MalformedJson", receiver: "ext:command-router" },
        { name: "not an envelope", subject: cmdSubject, data: JSON.stringify({ hello: "world" }), reason: "InvalidEnvelope", receiver: "ext:command-router" },
        {
          name: "schema-invalid payload",
          subject: cmdSubject,
          data: JSON.stringify({ ...validJson, id: "bad-payload", payload: { ...validJson.payload, targetCount: -5, channels: [] } }),
          reason: "InvalidPayload",
          receiver: "ext:command-router"
        },
        {
          name: "unknown type",
          subject: subjects.command(tenant, "campaign.explode"),
          data: JSON.stringify({ ...validJson, id: "unknown-type", type: "campaign.explode" }),
          reason: "UnknownMessageType",
          receiver: "ext:command-router"
        },
        {
          name: "unsupported version",
          subject: cmdSubject,
          data: JSON.stringify({ ...validJson, id: "v9", v: 9 }),
          reason: "UnsupportedVersion",
          receiver: "ext:command-router"
        },
        {
          name: "tenant of subject and envelope differ",
          subject: cmdSubject,
          data: JSON.stringify({ ...validJson, id: "other-tenant", tenant: "evil" }),
          reason: "Unauthorized",
          receiver: "ext:command-router"
        },
        {
          name: "a valid message that is not a command",
          subject: subjects.command(tenant, "contact.drafted"),
          data: JSON.stringify({
            ...validJson,
            id: "not-a-command",
            type: "contact.drafted",
            payload: { campaignId: "c", contactId: "x", channel: "email", subject: null, body: "hi", model: "m" }
          }),
          reason: "UnexpectedMessage",
          receiver: "ext:command-router"
        },
        { name: "garbage on a mailbox", subject: subjects.mailbox(tenant, 1, "contact", "ct-000001"), data: "\u0000\u00ff garbage", reason: "MalformedJson", receiver: "mailbox" },
        { name: "garbage on an agent queue", subject: subjects.work(tenant, "content"), data: "[1,2", reason: "MalformedJson", receiver: "agent:content" }
      ]
      for (const c of cases) yield* Crm.publishRaw(c.subject, c.data)

      const dead = yield* Crm.waitFor(
        `${cases.length} dead letters`,
        Effect.map(Crm.readAll(subjects.streams.deadLetters, subjects.deadLettersAll), (r) => (r.length >= cases.length ? r : undefined))
      )
      expect(dead.length).toBe(cases.length)
      for (const c of cases) {
        const record = dead.find((d) => Buffer.from(d.json.payload.dataBase64, "base64").toString() === c.data)
        expect(record, `dead letter for "${c.name}"`).toBeDefined()
        expect(record!.json.payload.reason, c.name).toBe(c.reason)
        expect(record!.json.payload.error._tag, c.name).toBe(c.reason)
        expect(record!.json.payload.error.message.length, c.name).toBeGreaterThan(0)
        expect(record!.json.payload.subject, c.name).toBe(c.subject)
        expect(record!.json.payload.receiver, c.name).toBe(c.receiver)
        expect(record!.subject, c.name).toBe(subjects.deadLetter(tenant, c.reason))
      }

      // the node still serves: a valid campaign completes
      yield* Crm.publishCommand(tenant, Campaign.StartCampaign, validStart("cmp-after"))
      yield* Crm.waitFor(
        "campaign after bad input completes",
        Effect.map(Crm.readAll(subjects.streams.events, subjects.eventsOf(tenant, "campaign", "cmp-after")), (r) =>
          r.some((e) => e.json.type === "event.campaign-completed") ? true : undefined
        )
      )
      // nothing was left unacknowledged in the work-queue streams
      for (const stream of [subjects.streams.commands, subjects.streams.mailboxes, subjects.streams.work]) {
        const info = yield* Effect.promise(() => jsm.streams.info(stream))
        expect(info.state.messages, `messages left in ${stream}`).toBe(0)
      }
      expect(node.counters.deadLetters).toBe(cases.length)
    })
  )
})
