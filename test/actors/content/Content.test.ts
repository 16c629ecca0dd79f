/**
 * The content task over the knowledge store (embedded PGlite, the fixture's ingested
 * events, the offline model): a draft follows up on the contact's last interaction, answers
 * its open objections and names what it is interested in; a contact the store knows nothing
 * about gets the plain template; the same input always gives the same draft.
 */
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import * as Agents from "../../../actors/Agents.js"
import * as Content from "../../../actors/content/Content.js"
import * as Model from "../../../actors/Model.js"
import * as Offline from "../../../actors/OfflineModel.js"
import { Address, Campaign, Message } from "../../../protocols/index.js"
import type { ContactSnapshot } from "../../../protocols/Campaign.js"
import { CampaignId, ContactId, TenantId } from "../../../protocols/Ids.js"
import type { Agent } from "../../../runtime/index.js"
import { ContactRepo } from "../../../storage/ContactRepo.js"
import * as Database from "../../../storage/Database.js"
import * as DemoData from "../../../storage/DemoData.js"
import { Ingestion } from "../../../storage/Ingestion.js"
import * as Knowledge from "../../fixtures/Knowledge.js"

const tenant = TenantId.make("content")
const now = Date.now()
const day = (msAgo: number) => new Date(now - msAgo).toLocaleDateString("en-GB", { day: "numeric", month: "long", timeZone: "UTC" })
const brief = Offline.brief("book a demo with enterprise leads")
const { ids } = Knowledge

/** Runs the content agent's handler on one draft request; what it replies. */
const askContentAgent = (contact: ContactSnapshot) =>
  Effect.gen(function* () {
    const replies: Array<Message.Decoded> = []
    const payload: typeof Campaign.DraftRequested.payload.Type = { campaignId: CampaignId.make("c-1"), contact, channel: "email", brief }
    const envelope = {
      id: "m-1",
      type: Campaign.DraftRequested.type,
      v: 1,
      tenant,
      from: Address.actor("contact", contact.id),
      to: Address.agent("content"),
      correlationId: "c-1",
      causationId: null,
      ts: now,
      trace: {},
      payload
    } as unknown as Message.Decoded["envelope"]
    const ctx: Agent.AgentContext = {
      self: Address.agent("content"),
      tenant,
      envelope,
      replyTo: envelope.from,
      send: () => undefined,
      reply: (def, p) => void replies.push({ envelope, type: def.type, payload: p })
    }
    yield* Agents.content.handle({ envelope, type: Campaign.DraftRequested.type, payload }, ctx)
    expect(replies.map((r) => r.type)).toEqual([Campaign.Drafted.type])
    return replies[0]!.payload as typeof Campaign.Drafted.payload.Type
  })

const ingested = Effect.gen(function* () {
  const ingestion = yield* Ingestion
  for (const e of Knowledge.sampleEvents(now)) yield* ingestion.ingest(tenant, e)
  const repo = yield* ContactRepo
  return (id: ContactId) => Effect.map(repo.get(tenant, id), Option.getOrThrow)
})

layer(Layer.mergeAll(Knowledge.layer(Database.layerEmbedded(Database.memory)), Model.layerOffline), { excludeTestServices: true })(
  "Content (PGlite, ingested knowledge, offline model)",
  (it) => {
    it.effect("an email follows up on the last interaction, answers the open objection and names the product of interest", () =>
      Effect.gen(function* () {
        const contact = yield* ingested
        const ava = yield* contact(ids.ava)
        const d = yield* Content.draft(tenant, { contact: ava, channel: "email", brief }, null)
        expect(d.verdict, d.reasons.join(", ")).toBe("pass")
        // her last interaction: yesterday's security review (where security was settled)
        expect(d.body).toContain(`Following up on our meeting on ${day(86_400_000)} ("Security review")`)
        // her email three days ago: the price is too high (still open) and Nexus Voice
        expect(d.body).toContain("On price: we can start with a smaller tier")
        expect(d.body).not.toMatch(/On security/)
        expect(d.subject).toBe("Acme Software: Nexus Voice, book a 20-minute call?")
        expect(d.body).toContain("use Nexus Voice to")
        // nobody else's data: not her near-duplicate, not her colleague
        expect(d.body).not.toMatch(/Ben|Okafor|a\.smith/)
        // the same input, the same draft
        expect(yield* Content.draft(tenant, { contact: ava, channel: "email", brief }, null)).toEqual(d)
      }))

    it.effect("an SMS and a call script carry the same knowledge, each in its form", () =>
      Effect.gen(function* () {
        const contact = yield* ingested
        const ben = yield* contact(ids.ben)
        // Ben: on his call two days ago he said they already use a competitor (still open)
        const sms = yield* Content.draft(tenant, { contact: ben, channel: "sms", brief }, null)
        expect(sms.body).toContain("following up on Nexus Voice: we work alongside your current tools.")
        expect(sms.body.endsWith("Reply STOP to opt out.")).toBe(true)
        expect(sms.body.length).toBeLessThanOrEqual(300)
        const call = yield* Content.draft(tenant, { contact: ben, channel: "voice", brief }, null)
        expect(call.body).toContain(`Recap: the last contact was our meeting on ${day(86_400_000)} ("Security review")`)
        expect(call.body).toContain("Address: On your current tools: we work alongside what you use today")
      }))

    it.effect("the prompt carries the assembled context within its budget; without knowledge the draft is the plain template", () =>
      Effect.gen(function* () {
        const contact = yield* ingested
        const ava = yield* contact(ids.ava)
        const context = yield* Content.contextOf(tenant, ava, brief)
        expect(context).not.toBeNull()
        expect(Math.ceil(context!.text.length / 4)).toBeLessThanOrEqual(Content.CONTEXT_TOKENS)
        expect(context!.facts.openObjections).toEqual(["price"])
        const prompt = Content.draftTask.prompt({ contact: ava, channel: "email", brief, context })
        expect(prompt).toContain("What we know about the contact:\nContact:\nAva Smith, CTO at Acme Software")
        expect(prompt).toContain("Open objections:\nprice: raised 1×")

        // a contact with a record but no history, and one the store has never seen
        const repo = yield* ContactRepo
        const [fresh] = DemoData.contacts(tenant, 1, 99) as ReadonlyArray<ContactSnapshot>
        yield* repo.insertMany(tenant, [fresh!])
        const plain = Offline.draft(fresh!, "email", brief)
        expect(yield* Content.draft(tenant, { contact: fresh!, channel: "email", brief }, null)).toMatchObject({ subject: plain.subject, body: plain.body })
        const stranger = { ...fresh!, id: ContactId.make("ct-unknown") }
        expect(yield* Content.contextOf(tenant, stranger, brief)).toBeNull()
        const d = yield* Content.draft(tenant, { contact: stranger, channel: "email", brief }, null)
        expect(d.body).toBe(Offline.draft(stranger, "email", brief).body)
      }))

    it.effect("the content agent drafts from the assembled context; with CONTENT_CONTEXT=off, from the contact record alone", () =>
      Effect.gen(function* () {
        const contact = yield* ingested
        const ava = yield* contact(ids.ava)
        const withContext = yield* askContentAgent(ava)
        expect(withContext.body).toContain(`Following up on our meeting on ${day(86_400_000)} ("Security review")`)
        const off = ConfigProvider.fromMap(new Map([["CONTENT_CONTEXT", "off"]]))
        const plain = yield* askContentAgent(ava).pipe(Effect.withConfigProvider(off))
        const template = Offline.draft(ava, "email", brief)
        expect(plain).toMatchObject({ subject: template.subject, body: template.body })
        expect(plain.body).not.toContain("Following up")
        // the setting is read per config provider: the default one still drafts with context
        expect((yield* askContentAgent(ava)).body).toBe(withContext.body)
      }))
  }
)
