/**
 * The live channels against real local servers: SMTP (a real `smtp-server` on loopback,
 * driven by nodemailer), a Twilio-shaped SMS API and the Vapi API (recorded shapes played
 * by a loopback server to the real `@vapi-ai/server-sdk` client), with the attempt ledger
 * on Postgres. Each delivery is recorded before it is sent and sent at most once per key;
 * throttles and the concurrency limit defer; provider errors map to outcomes or retryable
 * failures; an attempt a crash left unfinished is reconciled (Vapi `calls.list`) or
 * reported as uncertain, never sent twice.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import type { DeliveryRequest } from "../../../actors/Channels.js"
import * as LiveChannels from "../../../actors/channels/LiveChannels.js"
import * as SmtpEmail from "../../../actors/channels/SmtpEmail.js"
import * as TwilioSms from "../../../actors/channels/TwilioSms.js"
import * as VapiVoice from "../../../actors/channels/VapiVoice.js"
import { CampaignId, ContactId, TenantId } from "../../../protocols/Ids.js"
import * as AttemptLedger from "../../../storage/AttemptLedger.js"
import * as Postgres from "../../fixtures/Postgres.js"
import * as ProviderServer from "../../fixtures/ProviderServer.js"
import * as SmtpServer from "../../fixtures/SmtpServer.js"

const tenant = TenantId.make("live")
const request = (key: string, channel: DeliveryRequest["channel"], to: string): DeliveryRequest => ({
  tenant,
  campaignId: CampaignId.make("cmp-live"),
  contactId: ContactId.make(key.split("/")[0]!),
  channel,
  to,
  subject: channel === "email" ? "A 20-minute call?" : null,
  body: "Hi, quick question about your outreach. This message was prepared by an AI assistant.",
  idempotencyKey: `${tenant}/cmp-live/${key}`,
  leadScore: 50
})

const vapiCall = (id: string, metadata: unknown) => ({
  id,
  orgId: "org-test",
  type: "outboundPhoneCall",
  status: "queued",
  createdAt: "2026-11-21T12:00:00.000Z",
  updatedAt: "2026-11-21T12:00:00.000Z",
  phoneNumberId: "pn-1",
  assistantId: "asst-1",
  customer: { number: "+15550100777" },
  assistantOverrides: { metadata },
  metadata
})

const Env = AttemptLedger.layer.pipe(Layer.provideMerge(Postgres.layerFresh))

layer(Env, { timeout: 60_000, excludeTestServices: true })("live channels", (it) => {
  it.scoped("email over real SMTP: sent once per key, bounces are outcomes, the daily throttle defers", () =>
    Effect.gen(function* () {
      const smtp = yield* SmtpServer.start
      const adapter = SmtpEmail.make({ host: "127.0.0.1", port: smtp.port, from: "sales@nexus.example", maxPerDay: 3 })
      const channels = yield* LiveChannels.make([adapter])
      const first = yield* channels.deliver(request("ct-1/1/email", "email", "ada@acme.example"))
      expect(first).toMatchObject({ _tag: "Delivered", outcome: "sent", duplicate: false })
      expect(smtp.mails).toHaveLength(1)
      expect(smtp.mails[0]!.to).toEqual(["ada@acme.example"])
      expect(smtp.mails[0]!.raw).toContain(`Message-ID: ${SmtpEmail.messageIdOf(`${tenant}/cmp-live/ct-1/1/email`, "sales@nexus.example")}`)
      // a re-run of the same delivery sends nothing
      const again = yield* channels.deliver(request("ct-1/1/email", "email", "ada@acme.example"))
      expect(again).toMatchObject({ _tag: "Delivered", outcome: "sent", duplicate: true })
      expect(smtp.mails).toHaveLength(1)
      const bounced = yield* channels.deliver(request("ct-2/1/email", "email", "bounce@acme.example"))
      expect(bounced).toMatchObject({ _tag: "Delivered", outcome: "bounced" })
      expect((bounced as { detail: string }).detail).toMatch(/^550/)
      yield* channels.deliver(request("ct-3/1/email", "email", "cy@acme.example"))
      const throttled = yield* channels.deliver(request("ct-4/1/email", "email", "di@acme.example"))
      expect(throttled._tag).toBe("Deferred")
      expect((throttled as { reason: string }).reason).toBe("throttle:email:smtp:sales@nexus.example used 3/3 today")
      expect((throttled as { retryAt: number }).retryAt % 86_400_000).toBe(0)
      expect(smtp.mails).toHaveLength(2)
    })
  )

  it.scoped("SMS through a Twilio-shaped API: queued, STOP-ed recipients fail, 429 is retryable, a timeout is never resent", () =>
    Effect.gen(function* () {
      const server = yield* ProviderServer.start((req) => {
        const to = req.body?.To as string
        if (to === "+15550100021") return { status: 400, body: { code: 21610, message: "Attempt to send to unsubscribed recipient", more_info: "https://www.twilio.com/docs/errors/21610", status: 400 } }
        if (to === "+15550100029") return { status: 429, body: { code: 20429, message: "Too Many Requests", status: 429 } }
        if (to === "+15550100099") return { status: 201, body: { sid: "SMlate" }, delayMs: 2_000 }
        return { status: 201, body: { sid: `SM${req.body.To.slice(-4)}`, status: "queued", to, from: "+15550100000", body: req.body.Body, num_segments: "1" } }
      })
      const adapter = TwilioSms.make({ baseUrl: server.url, accountSid: "AC123", authToken: Redacted.make("token"), from: "+15550100000", timeoutMs: 300 })
      const channels = yield* LiveChannels.make([adapter])
      const ok = yield* channels.deliver(request("ct-20/1/sms", "sms", "+15550100020"))
      expect(ok).toMatchObject({ _tag: "Delivered", outcome: "sent", detail: "queued (SM0020)" })
      const req = server.requests[0]!
      expect(req.path).toBe("/2010-04-01/Accounts/AC123/Messages.json")
      expect(req.headers.authorization).toBe(`Basic ${Buffer.from("AC123:token").toString("base64")}`)
      expect(req.body).toMatchObject({ To: "+15550100020", From: "+15550100000" })
      expect(yield* channels.deliver(request("ct-21/1/sms", "sms", "+15550100021"))).toMatchObject({ outcome: "failed", detail: "recipient opted out (21610)" })
      const limited = yield* Effect.flip(channels.deliver(request("ct-29/1/sms", "sms", "+15550100029")))
      expect(limited).toMatchObject({ _tag: "ChannelError", reason: "RateLimited", retryable: true, sent: "no" })
      expect(Option.isNone(yield* (yield* AttemptLedger.AttemptLedger).get(tenant, `${tenant}/cmp-live/ct-29/1/sms`))).toBe(true)
      const timedOut = yield* Effect.flip(channels.deliver(request("ct-99/1/sms", "sms", "+15550100099")))
      expect(timedOut).toMatchObject({ reason: "Timeout", sent: "unknown" })
      const rerun = yield* channels.deliver(request("ct-99/1/sms", "sms", "+15550100099"))
      expect(rerun).toMatchObject({ _tag: "Delivered", outcome: "failed", duplicate: true })
      expect((rerun as { detail: string }).detail).toMatch(/uncertain/)
      expect(server.requests.filter((r) => r.body?.To === "+15550100099")).toHaveLength(1)
    })
  )

  it.scoped("Vapi: call placed with metadata, SDK retries off; a failed create is reconciled by calls.list; concurrency defers", () =>
    Effect.gen(function* () {
      let failCreate = true
      const server = yield* ProviderServer.start((req, all) => {
        if (req.method === "POST" && req.path === "/call") {
          const n = all.filter((r) => r.method === "POST").length
          if (failCreate && n === 1) return { status: 500, body: { message: "Internal server error", statusCode: 500 } }
          return { status: 201, body: vapiCall(`call-${n}`, req.body.metadata) }
        }
        if (req.method === "GET" && req.path.startsWith("/call")) {
          const created = all.filter((r) => r.method === "POST")
          return { body: created.map((r, i) => vapiCall(`call-listed-${i + 1}`, r.body.metadata)) }
        }
        return { status: 404, body: {} }
      })
      const adapter = VapiVoice.make({ apiKey: Redacted.make("vapi-test"), baseUrl: server.url, phoneNumberId: "pn-1", assistantId: "asst-1", maxConcurrent: 1 })
      const channels = yield* LiveChannels.make([adapter])
      const r = request("ct-30/1/voice", "voice", "+15550100777")
      // the provider answered 500 after (perhaps) creating the call: sent is unknown, the attempt stays pending
      const failed = yield* Effect.flip(channels.deliver(r))
      expect(failed).toMatchObject({ _tag: "ChannelError", sent: "unknown" })
      expect(server.requests.filter((q) => q.method === "POST")).toHaveLength(1) // no SDK retry
      const create = server.requests[0]!
      expect(create.body.metadata).toEqual({ tenant, campaignId: "cmp-live", contactId: "ct-30", idempotencyKey: r.idempotencyKey })
      expect(create.body.assistantOverrides.metadata).toEqual(create.body.metadata)
      expect(create.headers.authorization).toBe("Bearer vapi-test")
      // the re-run reconciles: the call is found by its metadata, not placed again
      const rerun = yield* channels.deliver(r)
      expect(rerun).toMatchObject({ _tag: "Pending", providerRef: "call-listed-1", duplicate: true })
      expect(server.requests.filter((q) => q.method === "POST")).toHaveLength(1)
      expect(server.requests.find((q) => q.method === "GET")!.path).toMatch(/^\/call\?.*createdAtGe=/)
      // one call at a time for this account: the next one is deferred
      failCreate = false
      const second = yield* channels.deliver(request("ct-31/1/voice", "voice", "+15550100778"))
      expect(second).toMatchObject({ _tag: "Deferred" })
      expect((second as { reason: string }).reason).toMatch(/^capacity:voice:vapi:pn-1 1\/1 active/)
      // the end of the first call frees the slot
      yield* (yield* AttemptLedger.AttemptLedger).finish(tenant, r.idempotencyKey, { status: "done", outcome: "customer-ended-call", detail: "", result: null })
      expect(yield* channels.deliver(request("ct-31/1/voice", "voice", "+15550100778"))).toMatchObject({ _tag: "Pending", providerRef: "call-2" })
    })
  )
})
