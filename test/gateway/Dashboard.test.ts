/**
 * The dashboard end to end in headless Chromium (Debian's `chromium`, driven by
 * `playwright-core` through `executablePath`; no browser download): a real runtime node and
 * gateway on real NATS and Postgres. The page renders a running campaign (progress, funnel,
 * budget, concurrency, chart, planner trace, per-contact timeline, approvals; screenshot
 * saved and checked), starts a real campaign from its form and follows it live to
 * completion, sends a pause command, and lists a dead letter (a malformed command the node
 * refused) and retries it with its button.
 *
 * Skipped, saying so, when /usr/bin/chromium is absent (`apt-get install -y chromium`;
 * `.ci/run` installs it).
 */
import { existsSync, mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Browser, Page } from "playwright-core"
import { CrmApp } from "../../actors/index.js"
import { Gateway, GatewayConfig } from "../../gateway/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, Campaign, Control, Ids, type Message } from "../../protocols/index.js"
import { Node } from "../../runtime/index.js"
import * as DemoData from "../../storage/DemoData.js"
import * as Crm from "../fixtures/Crm.js"
import { authSettings, token } from "./Tokens.js"

const CHROMIUM = "/usr/bin/chromium"
const available = existsSync(CHROMIUM)
if (!available) console.warn(`Dashboard.test.ts skipped: ${CHROMIUM} is absent (apt-get install -y chromium)`)

const TENANT = Ids.TenantId.make("dash")
const Env = Gateway.layer.pipe(
  Layer.provide(GatewayConfig.layerWith({ port: 0, host: "127.0.0.1", ...authSettings })),
  Layer.provideMerge(Crm.layer())
)

const browser = Effect.acquireRelease(
  Effect.promise(async () => {
    const { chromium } = await import("playwright-core")
    return chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    })
  }),
  (b: Browser) => Effect.promise(() => b.close())
)

let n = 0
/** Publishes an event of a campaign as its campaign actor would. */
const emit = <A, I>(campaignId: string, def: Message.MessageType<A, I>, payload: A) =>
  Effect.gen(function* () {
    const { js } = yield* NatsClient
    const { subjects } = yield* Deployment.Deployment
    const id = `ev-${campaignId}-${++n}`
    const bytes = CrmApp.registry.encode(
      { id: id as Ids.MessageId, tenant: TENANT, from: Address.actor("campaign", campaignId), to: Address.topic("campaign", campaignId), correlationId: campaignId, causationId: null, ts: Date.now(), trace: { traceparent: `00-${"c".repeat(32)}-${String(n).padStart(16, "0")}-01` } },
      def,
      payload
    )
    yield* Effect.promise(() => js.publish(subjects.event(TENANT, "campaign", campaignId, def.type), bytes))
  })

const text = (page: Page, testId: string) => page.getByTestId(testId).first().innerText()
const waitText = (page: Page, testId: string, expected: string | RegExp) =>
  waitFor(page, testId, expected).catch(async (e) => {
    const seen = await page.locator("body").innerText().catch(() => "?")
    throw new Error(`waiting for ${testId} ~ ${expected}: ${e.message}\npage text:\n${seen.slice(0, 3000)}`)
  })
const waitFor = (page: Page, testId: string, expected: string | RegExp) =>
  page.waitForFunction(
    ([id, source, flags]) => {
      const el = (globalThis as any).document.querySelector(`[data-testid="${id}"]`)
      return el !== null && new RegExp(source!, flags).test(el.innerText)
    },
    [testId, typeof expected === "string" ? expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") : expected.source, typeof expected === "string" ? "" : expected.flags],
    { timeout: 20_000 }
  )

const running = (id: string) =>
  Effect.gen(function* () {
    const cid = Ids.CampaignId.make(id)
    yield* emit(id, Campaign.CampaignStarted, { campaignId: cid, name: "Enterprise voice push", goal: "call 100 qualified enterprise leads", targetCount: 100, budget: { maxActions: 200, maxCostUsd: 50 } })
    yield* emit(id, Campaign.CampaignPlanned, {
      campaignId: cid,
      plan: {
        audience: { segments: ["enterprise"] }, limit: 100, channelSequence: ["voice", "email"], model: "offline-planner",
        brief: { goal: "book demos", tone: "warm", valueProposition: "faster pipeline", callToAction: "book a call" },
        reasoning: [
          { thought: "Which contacts match the goal?", action: "query_contacts(segment=enterprise)", observation: "412 contacts match" },
          { thought: "Rank them by lead score", action: "lead_score(top=100)", observation: "100 contacts above 70" }
        ]
      }
    })
    for (const [completed, inProgress] of [[5, 30], [12, 42], [20, 48], [28, 50], [40, 45]] as const) {
      yield* emit(id, Campaign.CampaignProgress, { campaignId: cid, counts: { targeted: 100, dispatched: completed + inProgress, inProgress, completed, reached: Math.floor(completed * 0.6), replied: Math.floor(completed * 0.3), converted: Math.floor(completed * 0.15), skipped: Math.floor(completed * 0.25), failed: completed - Math.floor(completed * 0.6) - Math.floor(completed * 0.25) } })
    }
    for (const phase of ["engaged", "drafted", "delivered", "analysed"] as const) {
      yield* emit(id, Campaign.ContactProgress, { campaignId: cid, contactId: Ids.ContactId.make("ct-007"), phase, channel: "voice", status: null, reason: null })
    }
    yield* emit(id, Campaign.ContactProgress, { campaignId: cid, contactId: Ids.ContactId.make("ct-008"), phase: "completed", channel: null, status: "skipped", reason: "opted-out" })
    yield* emit(id, Control.ApprovalRequested, { campaignId: cid, approvalId: "ap-1", action: "voice-blast", reason: "more than 50 calls in an hour", details: { calls: 80 } })
  })

describe.skipIf(!available)("Dashboard in headless Chromium", () => {
  layer(Env, { excludeTestServices: true, timeout: "90 seconds" })("with a runtime node and the gateway", (it) => {
    it.scoped("renders a running campaign, starts and follows a real one, pauses, retries a dead letter", () =>
      Effect.gen(function* () {
        yield* DemoData.load(TENANT, 60, 7)
        yield* Node.start(CrmApp.nodeOptions)
        const gw = yield* Gateway.Gateway
        const b = yield* browser
        const page = yield* Effect.promise(() => b.newPage({ viewport: { width: 1400, height: 1000 } }))
        const errors: Array<string> = []
        page.on("pageerror", (e) => errors.push(e.message))
        const jwt = yield* Effect.promise(() => token(TENANT, "operator", { sub: "dana" }))

        // 1. a running campaign, as its events describe it
        yield* running("run-1")
        yield* Effect.promise(() => page.goto(`${gw.httpUrl}/?token=${jwt}`))
        yield* Effect.promise(() => waitText(page, "who", "dana · dash · operator"))
        yield* Effect.promise(() => waitText(page, "progress-text", "40 / 100"))
        yield* Effect.promise(() => waitText(page, "approvals", "voice-blast"))
        expect(page.url(), "the token is removed from the address bar").not.toContain("token=")
        expect(yield* Effect.promise(() => text(page, "campaign-state"))).toBe("running")
        expect(yield* Effect.promise(() => text(page, "concurrency"))).toBe("45")
        expect(yield* Effect.promise(() => text(page, "funnel-reached"))).toBe("24")
        expect(yield* Effect.promise(() => text(page, "funnel-replied"))).toBe("12")
        expect(yield* Effect.promise(() => text(page, "funnel-queued"))).toBe("15")
        expect(yield* Effect.promise(() => text(page, "trace"))).toContain("query_contacts(segment=enterprise)")
        expect(yield* Effect.promise(() => text(page, "skipped"))).toContain("opted-out")
        expect(yield* Effect.promise(() => page.locator('[data-testid="chart"] path').count())).toBe(2)
        const width = yield* Effect.promise(() => page.locator('[data-testid="progress"] > div').evaluate((el: any) => el.style.width as string))
        expect(width).toBe("40%")
        yield* Effect.promise(() => page.locator('tr[data-contact="ct-007"]').click())
        yield* Effect.promise(() => waitText(page, "timeline", /engaged[\s\S]*drafted[\s\S]*delivered[\s\S]*analysed/))
        const dir = mkdtempSync(join(tmpdir(), "nexus-dashboard-"))
        const shot = join(dir, "running-campaign.png")
        yield* Effect.promise(() => page.screenshot({ path: shot, fullPage: true }))
        expect(statSync(shot).size, `screenshot ${shot}`).toBeGreaterThan(30_000)
        console.log(`dashboard screenshot: ${shot}`)

        // 2. pause sends a command (the campaign actor of this synthetic campaign may refuse it: a dead letter)
        yield* Effect.promise(() => page.getByTestId("pause").click())
        yield* Effect.promise(() => waitText(page, "toast", "pause: sent (campaign.pause)"))

        // 3. a real campaign started from the form, followed live to completion
        yield* Effect.promise(async () => {
          await page.locator("#new-campaign summary").click()
          await page.locator('#start-form input[name="name"]').fill("From the browser")
          await page.locator('#start-form input[name="targetCount"]').fill("20")
          await page.locator('#start-form button[type="submit"]').click()
        })
        yield* Effect.promise(() => waitText(page, "campaign-name", "From the browser"))
        yield* Effect.promise(() => waitText(page, "campaign-state", "completed"))
        const funnel = yield* Effect.promise(() =>
          Promise.all(["reached", "skipped", "failed", "in-progress", "queued"].map((k) => text(page, `funnel-${k}`).then(Number)))
        )
        const [reached, skipped, failed, inProgress, queued] = funnel
        const progress = yield* Effect.promise(() => text(page, "progress-text"))
        const [done, total] = progress.split(" / ").map(Number)
        expect(done, "every planned contact completed").toBe(total)
        expect(reached! + skipped! + failed!, `funnel ${funnel}`).toBe(done)
        expect([inProgress, queued]).toEqual([0, 0])
        expect(yield* Effect.promise(() => page.locator("#campaigns li").count())).toBe(2)

        // 4. a malformed command from "an external system": the node dead-letters it, the page
        //    lists it live, and Retry republishes its original bytes to its original subject
        const { subjects } = yield* Deployment.Deployment
        yield* Crm.publishRaw(subjects.command(TENANT, "campaign.start"), '{"id": "broken", "type": ')
        yield* Effect.promise(() => waitText(page, "dead-letters", "MalformedJson"))
        yield* Effect.promise(() => page.locator('[data-testid="dead-letter"]').filter({ hasText: "MalformedJson" }).getByTestId("retry").click())
        yield* Effect.promise(() => waitText(page, "dead-letters", /retried → seq \d+/))
        expect(errors, "no script errors").toEqual([])
      }))
  })
})
