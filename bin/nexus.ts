/**
 * `nexus`: one command for operators and scripts. Processes (`start`, `worker`, `gateway`)
 * run through `Launch.main`; campaign commands act as any external system would, on NATS:
 * `start` publishes a StartCampaign command (and with `--follow` shows a progress bar until
 * the campaign completes), `status` reads the latest events, `pause`/`resume` publish
 * commands, `tail` follows the event stream. Arguments are checked by `Cli.ts`; a bad one
 * prints what is wrong and the usage, and exits with 2.
 */
import * as TenantBudget from "../actors/TenantBudget.js"
import { writeFileSync } from "node:fs"
import { DeliverPolicy } from "@nats-io/jetstream"
import { Config, Effect, Either, Layer, Option } from "effect"
import * as Auth from "../gateway/Auth.js"
import { NatsClient, NatsConfig } from "../nats/index.js"
import { AsyncApi, Campaign, Catalog, Command, Control, Ids, Message, Subjects } from "../protocols/index.js"
import { type Command as CliCommand, parseCommand, USAGE } from "./Cli.js"

const registry = Message.registry(Catalog.all)
const tty = process.stdout.isTTY === true

/** A text progress bar. */
export const bar = (done: number, total: number, width = 30): string => {
  const filled = total <= 0 ? width : Math.min(width, Math.round((done / total) * width))
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`
}

class CliFailure extends Error {}

const nats = NatsClient.layer.pipe(Layer.provideMerge(NatsConfig.layer))

const context = Effect.gen(function* () {
  const h = yield* NatsClient.NatsClient
  const cfg = yield* NatsConfig.NatsConfig
  return { ...h, subjects: Subjects.make(cfg.prefix, cfg.partitions) }
})

const publish = <A, I>(tenant: string, def: Message.MessageType<A, I>, payload: A) =>
  Effect.gen(function* () {
    const { js, subjects } = yield* context
    const cmd = Command.make(subjects, registry, Ids.TenantId.make(tenant), def, payload, { from: "cli" })
    yield* Effect.tryPromise({
      try: () => js.publish(cmd.subject, cmd.data, { msgID: cmd.id }),
      catch: (e) => new CliFailure(`could not publish on ${cmd.subject}: ${String(e)} (is a nexus node provisioned on this NATS? run 'nexus start' or 'nexus worker')`)
    })
    return cmd
  })

type Ev = { type: string; payload: any; ts: number }

const describe = (e: Ev): string => {
  const p = e.payload
  switch (e.type) {
    case "event.campaign-started": return `started "${p.name}": ${p.goal} (${p.targetCount} contacts)`
    case "event.campaign-planned": return `planned by ${p.plan.model}: ${p.plan.limit} contacts, ${p.plan.channelSequence.join(" → ")}`
    case "event.campaign-progress": return `progress ${bar(p.counts.completed, p.counts.targeted)} in progress ${p.counts.inProgress}`
    case "event.campaign-completed": return `completed: reached ${p.summary.counts.reached}, converted ${p.summary.counts.converted}, skipped ${p.summary.counts.skipped}, failed ${p.summary.counts.failed}`
    case "event.contact-progress": return `contact ${p.contactId} ${p.phase}${p.channel ? ` via ${p.channel}` : ""}${p.status ? ` → ${p.status}` : ""}${p.reason ? ` (${p.reason})` : ""}`
    default: return JSON.stringify(p).slice(0, 200)
  }
}

/** Follows a campaign's events from `from` until it completes or is rejected. */
const tail = (tenant: string, id: string, from: number, mode: "lines" | "json" | "bar") =>
  Effect.gen(function* () {
    const { js, subjects } = yield* context
    const consumer = yield* Effect.tryPromise({
      try: () => js.consumers.get(subjects.streams.events, { filter_subjects: subjects.eventsOf(tenant, "campaign", id), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }),
      catch: (e) => new CliFailure(`cannot read the events stream ${subjects.streams.events}: ${String(e)}`)
    })
    const messages = yield* Effect.promise(() => consumer.consume())
    yield* Effect.promise(async () => {
      let total = 0
      for await (const m of messages) {
        const e = m.json<Ev>()
        if (e.type === "event.campaign-started") total = e.payload.targetCount
        if (e.type === "event.campaign-planned") total = e.payload.plan.limit
        if (mode === "json") console.log(JSON.stringify({ seq: m.seq, ...e }))
        else if (mode === "lines") console.log(`${String(m.seq).padStart(7)}  ${new Date(e.ts).toISOString()}  ${describe(e)}`)
        else if (e.type === "event.campaign-progress" || e.type === "event.campaign-completed") {
          const c = e.type === "event.campaign-progress" ? e.payload.counts : e.payload.summary.counts
          const line = `${bar(c.completed, total || c.targeted)}  in progress ${c.inProgress}`
          if (tty) process.stdout.write(`\r${line}`)
          else console.log(line)
        } else if (e.type !== "event.contact-progress") console.log(describe(e))
        if (e.type === "event.campaign-completed" || e.type === "event.campaign-rejected") {
          if (mode === "bar" && tty) process.stdout.write("\n")
          if (mode === "bar") console.log(describe(e))
          break
        }
      }
    }).pipe(Effect.ensuring(Effect.sync(() => void messages.close())))
  })

const status = (tenant: string, id: string) =>
  Effect.gen(function* () {
    const { jsm, subjects } = yield* context
    const last = (type: string) =>
      Effect.tryPromise(() => jsm.streams.getMessage(subjects.streams.events, { last_by_subj: subjects.event(tenant, "campaign", id, type) })).pipe(
        Effect.map((m) => (m === null ? undefined : (m.json<Ev>()))),
        Effect.orElseSucceed(() => undefined)
      )
    const types = [Campaign.CampaignStarted, Campaign.CampaignPlanned, Control.CampaignStateChanged, Campaign.CampaignProgress, Campaign.CampaignCompleted, Campaign.CampaignRejected]
    const found = (yield* Effect.forEach(types, (t) => last(t.type), { concurrency: "unbounded" })).filter((e): e is Ev => e !== undefined)
    if (found.length === 0) return yield* Effect.fail(new CliFailure(`no events for campaign '${id}' of tenant '${tenant}' (unknown campaign, or another NEXUS_PREFIX?)`))
    console.log(`campaign ${id} (tenant ${tenant})`)
    for (const e of found.sort((a, b) => a.ts - b.ts)) console.log(`  ${new Date(e.ts).toISOString()}  ${describe(e)}`)
  })

const run = (cmd: CliCommand): Effect.Effect<void, unknown> => {
  switch (cmd._tag) {
    case "Help":
      return Effect.sync(() => console.log(USAGE))
    case "Run":
      // loaded only here: the process entry points pull in the whole runtime
      return Effect.promise(() => import("./Launch.js")).pipe(
        Effect.map(({ main }) => main({ runtime: cmd.role !== "gateway", gateway: cmd.role !== "worker", devAuth: cmd.role === "start" }))
      )
    case "AsyncApi":
      return Effect.sync(() => {
        const text = JSON.stringify(AsyncApi.make(), null, 2) + "\n"
        if (cmd.out) writeFileSync(cmd.out, text)
        else process.stdout.write(text)
      })
    case "Token":
      return Effect.gen(function* () {
        const secret = yield* Config.option(Config.string("GATEWAY_JWT_SECRET"))
        if (Option.isNone(secret)) return yield* Effect.fail(new CliFailure("GATEWAY_JWT_SECRET is not set: tokens are signed with the gateway's secret"))
        console.log(yield* Effect.promise(() => Auth.issue(secret.value, { tenant: cmd.tenant, role: cmd.role, sub: cmd.sub }, { ttlSec: cmd.ttlSec })))
      })
    case "CampaignStart":
      return Effect.gen(function* () {
        const campaignId = Ids.CampaignId.make(cmd.id ?? `c-${Date.now().toString(36)}`)
        const sent = yield* publish(cmd.tenant, Campaign.StartCampaign, {
          campaignId, name: cmd.name, goal: cmd.goal, audience: {},
          channels: cmd.channels as unknown as Campaign.StartPayload["channels"],
          targetCount: cmd.target, budget: { maxActions: cmd.maxActions, maxCostUsd: cmd.maxCostUsd }
        })
        console.log(`campaign ${campaignId} start sent on ${sent.subject} (command ${sent.id})`)
        if (cmd.follow) yield* tail(cmd.tenant, campaignId, 1, "bar")
      }).pipe(Effect.provide(nats))
    case "CampaignPause":
      return publish(cmd.tenant, Control.PauseCampaign, { campaignId: Ids.CampaignId.make(cmd.id), reason: cmd.reason, by: "cli" }).pipe(
        Effect.tap((c) => Effect.sync(() => console.log(`pause of ${cmd.id} sent on ${c.subject}`))),
        Effect.provide(nats)
      )
    case "CampaignResume":
      return publish(cmd.tenant, Control.ResumeCampaign, { campaignId: Ids.CampaignId.make(cmd.id), by: "cli" }).pipe(
        Effect.tap((c) => Effect.sync(() => console.log(`resume of ${cmd.id} sent on ${c.subject}`))),
        Effect.provide(nats)
      )
    case "CampaignStatus":
      return status(cmd.tenant, cmd.id).pipe(Effect.provide(nats))
    case "TenantBudget":
      return Effect.gen(function* () {
        const budgets = yield* TenantBudget.TenantBudget
        if (cmd.set !== null) yield* budgets.setLimit(cmd.tenant, cmd.set === "clear" ? null : cmd.set)
        const r = yield* budgets.get(cmd.tenant)
        const held = Object.entries(r?.grants ?? {})
        console.log(
          r?.limit
            ? `tenant ${cmd.tenant}: limit ${r.limit.actions} actions, $${r.limit.usd}`
            : `tenant ${cmd.tenant}: no budget limit`
        )
        for (const [id, g] of held) console.log(`  ${id}: ${g.closed ? "spent" : "holds"} ${g.actions} actions, $${g.usd.toFixed(4)}`)
      }).pipe(Effect.provide(TenantBudget.layer.pipe(Layer.provideMerge(nats))))
    case "CampaignTail":
      return tail(cmd.tenant, cmd.id, cmd.from, cmd.json ? "json" : "lines").pipe(Effect.provide(nats))
  }
}

const parsed = parseCommand(process.argv.slice(2))
if (Either.isLeft(parsed)) {
  console.error(`nexus: ${parsed.left.message}\n\n${USAGE}`)
  process.exit(2)
}
Effect.runPromise(run(parsed.right)).then(
  () => {
    if (parsed.right._tag !== "Run") process.exit(0)
  },
  (e) => {
    const err = (e as { cause?: unknown })?.cause ?? e
    console.error(`nexus: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
)
