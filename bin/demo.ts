/**
 * `npm run demo`: the main job on embedded defaults. Makes sure a NATS with JetStream
 * answers (starts a local `nats-server` if none does and one is installed), generates a
 * demo tenant, starts a runtime node and the gateway in this process, starts a campaign
 * by publishing its command on NATS as any external system would, follows its events
 * with a progress bar, and prints the summary. Without `GATEWAY_JWT_SECRET` it generates a
 * secret for the run and prints a dashboard link carrying a dev token.
 *
 * Options: --contacts N (default 500), --target N (default 50),
 *          --goal "..." (default "call 50 qualified enterprise leads"), --tenant ID (default demo).
 */
import { DeliverPolicy } from "@nats-io/jetstream"
import { Config, Effect, Exit, Layer, Option, Redacted } from "effect"
import { parseArgs } from "node:util"
import { CrmApp } from "../actors/index.js"
import * as Gateway from "../gateway/Gateway.js"
import * as GatewayConfig from "../gateway/GatewayConfig.js"
import { Deployment, NatsClient } from "../nats/index.js"
import * as LocalServer from "../nats/LocalServer.js"
import { Campaign, Command, Control, Ids } from "../protocols/index.js"
import * as Database from "../storage/Database.js"
import * as DemoData from "../storage/DemoData.js"
import * as DispatchPolicy from "../actors/guardrails/DispatchPolicy.js"
import { devSecret, logging, printDevLink, runtimeNode } from "./Launch.js"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"

const { values } = parseArgs({
  options: {
    contacts: { type: "string", default: "500" },
    target: { type: "string", default: "50" },
    goal: { type: "string" },
    tenant: { type: "string", default: "demo" }
  }
})

const positive = (name: string, s: string) => {
  const n = Number(s)
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive whole number, got '${s}'`)
    process.exit(2)
  }
  return n
}
const contactsN = positive("contacts", values.contacts!)
const target = positive("target", values.target!)
const goal = values.goal ?? `call ${target} qualified enterprise leads`
if (!/^[A-Za-z0-9_-]{1,64}$/.test(values.tenant!)) {
  console.error(`--tenant must be 1..64 characters of [A-Za-z0-9_-], got '${values.tenant}'`)
  process.exit(2)
}
const tenant = Ids.TenantId.make(values.tenant!)

const tty = process.stdout.isTTY === true
const bar = (done: number, total: number) => {
  const width = 30
  const filled = total === 0 ? width : Math.round((done / total) * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`
}

const campaign = (secret: Option.Option<string>) => Effect.gen(function* () {
  const started = Date.now()
  const written = yield* DemoData.load(tenant, contactsN, 1)
  console.log(`demo tenant '${tenant}': ${written} contacts ready`)
  yield* runtimeNode
  const gw = yield* Gateway.Gateway
  const { js } = yield* NatsClient.NatsClient
  const { subjects } = yield* Deployment.Deployment
  const campaignId = Ids.CampaignId.make(`demo-${Date.now().toString(36)}`)
  if (Option.isSome(secret)) yield* printDevLink(gw, secret.value)
  else console.log(`dashboard: ${gw.httpUrl}/ (sign a token with GATEWAY_JWT_SECRET: nexus token --tenant ${tenant})`)

  // follow the campaign's events from the first one (ordered consumer on the events stream)
  const consumer = yield* Effect.promise(() =>
    js.consumers.get(subjects.streams.events, {
      filter_subjects: subjects.eventsOf(tenant, "campaign", campaignId),
      deliver_policy: DeliverPolicy.All
    })
  )
  const messages = yield* Effect.promise(() => consumer.consume())

  // enough for every contact's worst case (three touches, a 10-minute call each) a window at a time
  const budget = { maxActions: target * 4, maxCostUsd: Math.max(500, target * 5) }
  const cmd = Command.make(subjects, CrmApp.registry, tenant, Campaign.StartCampaign, {
    campaignId,
    name: "Demo: enterprise outreach",
    goal,
    audience: {},
    channels: ["voice", "email", "sms"],
    targetCount: target,
    budget
  })
  const t0 = Date.now()
  yield* Effect.promise(() => js.publish(cmd.subject, cmd.data, { msgID: cmd.id }))
  console.log(`campaign ${campaignId} started on ${cmd.subject}: "${goal}"`)

  const summary = yield* Effect.promise(async () => {
    let total = target
    let lastPrinted = -1
    for await (const m of messages) {
      const e = m.json<{ type: string; payload: any }>()
      if (e.type === "event.campaign-planned") {
        total = e.payload.plan.limit
        console.log(`plan (${e.payload.plan.model}):`)
        for (const step of e.payload.plan.reasoning) console.log(`  thought: ${step.thought}\n    action: ${step.action} → ${step.observation}`)
      }
      if (e.type === "event.campaign-progress" || e.type === "event.campaign-completed") {
        const counts = e.type === "event.campaign-progress" ? e.payload.counts : e.payload.summary.counts
        if (tty) process.stdout.write(`\r${bar(counts.completed, total)}`)
        else if (counts.completed !== lastPrinted) console.log(bar(counts.completed, total))
        lastPrinted = counts.completed
      }
      if (e.type === "event.approval-requested") {
        // the demo plays the operator: it says what waits for approval and approves it
        const p = e.payload
        console.log(`approval needed for ${p.action}: ${p.reason}; the demo approves it as 'demo-operator' (a real deployment waits for a person: campaign.approve)`)
        const approve = Command.make(subjects, CrmApp.registry, tenant, Control.ApproveAction, { campaignId, approvalId: p.approvalId, by: "demo-operator" })
        await js.publish(approve.subject, approve.data, { msgID: approve.id })
      }
      if (e.type === "event.budget-exhausted") {
        const p = e.payload
        if (tty) process.stdout.write("\n")
        throw new Error(`campaign paused: the ${p.scope} ${p.budget} budget is exhausted (limit ${p.limit}, used ${p.used}, the next contact needs ${p.requested}); raise it with campaign.edit and resume`)
      }
      if (e.type === "event.campaign-completed") {
        if (tty) process.stdout.write("\n")
        return e.payload.summary as Campaign.CampaignSummary
      }
    }
    throw new Error("event stream ended before the campaign completed")
  }).pipe(Effect.ensuring(Effect.sync(() => void messages.close())))
  const elapsed = (Date.now() - t0) / 1000
  const c = summary.counts
  console.log(`\ncampaign ${campaignId} completed in ${elapsed.toFixed(2)} s (${(c.completed / Math.max(elapsed, 0.001)).toFixed(0)} contacts/s; whole demo ${((Date.now() - started) / 1000).toFixed(1)} s)`)
  console.log(`  targeted  ${c.targeted}`)
  console.log(`  spent     ${summary.actionsUsed} actions, $${(summary.costUsd ?? 0).toFixed(2)} of $${budget.maxCostUsd}`)
  console.log(`  reached   ${c.reached} (converted ${c.converted})`)
  console.log(`  failed    ${c.failed}`)
  console.log(`  skipped   ${c.skipped}`)
  for (const [why, n] of Object.entries(summary.skippedReasons)) console.log(`    ${why}: ${n}`)
  console.log(`  per channel:`)
  for (const [ch, v] of Object.entries(summary.perChannel)) console.log(`    ${ch.padEnd(6)} attempted ${v.attempted}, reached ${v.reached}`)
})

const program = Effect.gen(function* () {
  const natsUrl = yield* Config.string("NATS_URL").pipe(Config.withDefault("nats://127.0.0.1:4222"))
  const dataDir = yield* Config.string("NEXUS_DATA_DIR").pipe(Config.withDefault(".nexus-data"))
  const url = yield* LocalServer.ensure({ url: natsUrl.split(",")[0]!.trim(), dataDir })
  const dbUrl = yield* Config.option(Config.string("DATABASE_URL"))
  console.log(`NATS ${url}; database ${Option.isSome(dbUrl) ? "from DATABASE_URL" : `embedded PGlite in ${dataDir}/pglite`}`)
  const nats = Deployment.layerWith({ servers: [url] })
  const gatewayPort = yield* Config.integer("GATEWAY_PORT").pipe(Config.withDefault(0))
  // the dashboard is authenticated even here: without GATEWAY_JWT_SECRET the demo makes one
  const secret = yield* devSecret
  const jwt = Option.isSome(secret) ? { jwtSecret: Option.some(Redacted.make(secret.value)) } : {}
  const layers = Layer.mergeAll(
    // sandbox channels send nothing, so the demo works every time zone at any hour
    CrmApp.services(Database.layer, { policy: DispatchPolicy.layerWith(DispatchPolicy.anyTime) }),
    Gateway.layer.pipe(Layer.provide(GatewayConfig.layerWith({ port: gatewayPort, ...jwt })))
  ).pipe(Layer.provideMerge(nats))
  // the node's scope closes (drains) before the layers it needs (the NATS connection)
  yield* Effect.scoped(campaign(secret)).pipe(Effect.provide(layers))
})

NodeRuntime.runMain(
  Effect.scoped(program).pipe(
    Effect.provide(logging),
    Effect.tapErrorCause((cause) => Effect.sync(() => void cause)),
    Effect.catchTag("LocalServerError", (e) =>
      Effect.sync(() => {
        console.error(e.message)
        process.exitCode = 1
      })
    )
  ) as Effect.Effect<void, unknown>,
  {
    // the demo is a job: once its scopes are closed (node drained, connection closed) it exits,
    // whatever timers a library may still hold
    teardown: (exit, onExit) => {
      const code = Exit.isSuccess(exit) ? Number(process.exitCode ?? 0) : 1
      onExit(code)
      process.exit(code)
    }
  }
)
