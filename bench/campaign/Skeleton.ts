/**
 * The runtime without the CRM: the campaign flow's shape on the runtime's own machinery,
 * with handlers that do nothing but route. One actor per contact takes the contact lock,
 * walks the contact through three agents (content, executor, analyzer) that answer at once
 * (no model, no database; the executor passes the outcome straight to the analyzer, as the
 * CRM's does), emits the same progress events and messages as the contact actor (12
 * publishes per contact), releases the lock and passivates. The real message types and
 * payloads are used, so decoding and encoding cost what they cost in production.
 *
 * Against the full campaign it separates what the runtime costs per contact (mailboxes,
 * state, locks, de-duplication, publishing) from what the CRM's handlers and storage add.
 */
import type { Subscription } from "@nats-io/transport-node"
import { Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Schema, Scope } from "effect"
import * as OfflineModel from "../../actors/OfflineModel.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient } from "../../nats/NatsClient.js"
import { Address, Campaign, DeadLetter, Ids, Message } from "../../protocols/index.js"
import { Actor, Agent, Locks, Node, Outbox } from "../../runtime/index.js"
import { cpuMs, now, onAbort, percentile } from "../Bench.js"
import * as Environment from "./Environment.js"
import * as RoundTrips from "./RoundTrips.js"

const registry = Message.registry([...Campaign.all, DeadLetter.DeadLettered])
const brief = OfflineModel.brief(Environment.goal)
const topic = (campaignId: string) => Address.topic("campaign", campaignId)
const lockKey = (tenant: string, id: string) => `contact.${tenant}.${id}`

const State = Schema.Struct({
  phase: Schema.Literal("idle", "drafting", "delivering", "analysing", "done"),
  campaignId: Schema.NullOr(Schema.String),
  contact: Schema.NullOr(Campaign.ContactSnapshot)
})
type State = typeof State.Type

const progress = (ctx: Actor.ActorContext, campaignId: string, phase: "engaged" | "drafted" | "delivered" | "analysed" | "completed") =>
  ctx.send(topic(campaignId), Campaign.ContactProgress, {
    campaignId: campaignId as never,
    contactId: ctx.id as never,
    phase,
    channel: "email",
    status: phase === "completed" ? "reached" : null,
    reason: null
  })

/** The contact actor's shape, with nothing but routing in its handler. */
const probe = Actor.make({
  type: "contact",
  accepts: [Campaign.EngageContact, Campaign.Drafted, Campaign.Analysed],
  state: State,
  initial: (): State => ({ phase: "idle", campaignId: null, contact: null }),
  isIdle: (s) => s.phase === "done",
  handle: (s: State, m: Message.Decoded, ctx: Actor.ActorContext) =>
    Effect.gen(function* () {
      if (Message.is(Campaign.EngageContact)(m)) {
        const { campaignId, contact } = m.payload
        yield* Effect.flatMap(Locks.Locks, (l) => l.acquire(lockKey(ctx.tenant, ctx.id), `campaign:${campaignId}`))
        ctx.send(Address.agent("content"), Campaign.DraftRequested, { campaignId, contact, channel: "email" as const, brief })
        progress(ctx, campaignId, "engaged")
        return { phase: "drafting" as const, campaignId, contact }
      }
      const campaignId = s.campaignId!
      const contact = s.contact!
      if (Message.is(Campaign.Drafted)(m)) {
        ctx.send(Address.agent("executor"), Campaign.DeliverRequested, {
          campaignId: campaignId as never,
          contactId: contact.id,
          channel: "email",
          to: contact.email!,
          subject: m.payload.subject,
          body: m.payload.body,
          idempotencyKey: `${ctx.tenant}/${campaignId}/${contact.id}/1/email`,
          leadScore: contact.leadScore,
          analyse: { allowanceLeftUsd: null }
        })
        progress(ctx, campaignId, "drafted")
        return { ...s, phase: "delivering" as const }
      }
      if (Message.is(Campaign.Analysed)(m)) {
        progress(ctx, campaignId, "delivered")
        progress(ctx, campaignId, "analysed")
        yield* Effect.flatMap(Locks.Locks, (l) => l.release(lockKey(ctx.tenant, ctx.id), `campaign:${campaignId}`))
        ctx.send(topic(campaignId), Campaign.ContactCompleted, {
          campaignId: campaignId as never,
          contactId: contact.id,
          status: "reached",
          reason: null,
          channel: "email"
        })
        progress(ctx, campaignId, "completed")
        return { phase: "done" as const, campaignId: null, contact: null }
      }
      return s
    })
})

const draft = OfflineModel.draft(Environment.contact("skeleton", 1), "email", brief)

/** Agents that answer at once. */
const agents = [
  Agent.make({
    name: "content",
    accepts: [Campaign.DraftRequested],
    handle: (m, ctx) =>
      Effect.sync(() => {
        const p = m.payload as typeof Campaign.DraftRequested.payload.Type
        ctx.reply(Campaign.Drafted, { campaignId: p.campaignId, contactId: p.contact.id, channel: "email", subject: draft.subject, body: draft.body, model: "none" })
      })
  }),
  Agent.make({
    name: "executor",
    accepts: [Campaign.DeliverRequested],
    handle: (m, ctx) =>
      Effect.sync(() => {
        const p = m.payload as typeof Campaign.DeliverRequested.payload.Type
        const delivery = { idempotencyKey: p.idempotencyKey, outcome: "sent" as const, detail: "skeleton", durationSec: 0, transcript: null }
        ctx.send(
          Address.agent("analyzer"),
          Campaign.AnalyseRequested,
          { campaignId: p.campaignId, contactId: p.contactId, channel: p.channel, outcome: "sent", transcript: null, leadScore: p.leadScore, delivery },
          { replyTo: ctx.replyTo }
        )
      })
  }),
  Agent.make({
    name: "analyzer",
    accepts: [Campaign.AnalyseRequested],
    handle: (m, ctx) =>
      Effect.sync(() => {
        const p = m.payload as typeof Campaign.AnalyseRequested.payload.Type
        ctx.reply(Campaign.Analysed, {
          campaignId: p.campaignId,
          contactId: p.contactId,
          sentiment: "neutral",
          buyingSignals: [],
          nextBestAction: "none",
          leadStatus: "nurture",
          model: "none",
          ...(p.delivery !== undefined ? { delivery: p.delivery } : {})
        })
      })
  })
]

/** What a skeleton run measured. */
export interface SkeletonResult {
  readonly contacts: number
  readonly contactsPerSec: number
  readonly cpuMsPerContact: number
  readonly p99Ms: number
  readonly traffic: RoundTrips.Traffic
  /** CPU the nats-server spent per contact (NaN when it is not a process of this machine). */
  readonly natsCpuMsPerContact: number
}

/** Runs `contacts` through the skeleton in windows of `window` (after a warm-up). */
export const run = async (options: {
  /** Contacts measured (the least, when `seconds` is given). */
  readonly contacts: number
  /** Size the measured run to last about this long at the warm-up's rate, up to `maxContacts`. */
  readonly seconds?: number
  readonly maxContacts?: number
  readonly warmup?: number
  readonly window?: number
  /** Node options for experiments (actor host tunables). */
  readonly node?: Pick<Node.NodeOptions<unknown>, "actorHost" | "placement">
}): Promise<SkeletonResult> => {
  const prefix = Environment.freshPrefix()
  const forget = onAbort(() => Environment.destroyPrefix(prefix).then(() => undefined))
  const layer = Locks.layer.pipe(
    Layer.provideMerge(Deployment.layerWith({ servers: [Environment.natsUrl], prefix, name: `bench-skeleton-${prefix}` })),
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Warning))
  )
  const runtime = ManagedRuntime.make(layer)
  const scope = Effect.runSync(Scope.make())
  const subs: Array<Subscription> = []
  try {
    const nats = await runtime.runPromise(NatsClient)
    const { subjects } = await runtime.runPromise(Deployment.Deployment)
    const traffic = RoundTrips.attach(nats.nc)
    await runtime.runPromise(Node.start({ registry, actors: [probe], agents, commands: [], ...options.node }).pipe(Scope.extend(scope)))
    const window = options.window ?? 512
    const phase = (campaignId: string, n: number) =>
      new Promise<{ seconds: number; cpu: number; latencies: Array<number> }>((resolve, reject) => {
        const tenant = Ids.TenantId.make("skeleton")
        const started = new Map<string, number>()
        const latencies: Array<number> = []
        let next = 0
        let inFlight = 0
        const t0 = now()
        const cpu0 = cpuMs()
        const refill = () => {
          while (inFlight < window && next < n) {
            const contact = Environment.contact(campaignId, ++next)
            inFlight++
            started.set(contact.id, now())
            const id = Outbox.freshId()
            const to = Address.actor("contact", contact.id)
            const envelope = {
              id: id as never,
              tenant,
              from: Address.actor("campaign", campaignId),
              to,
              correlationId: campaignId,
              causationId: null,
              ts: Date.now(),
              trace: { traceparent: Outbox.newTraceparent(id) }
            }
            const data = registry.encode(envelope, Campaign.EngageContact, {
              campaignId: Ids.CampaignId.make(campaignId),
              contact,
              channels: ["email"],
              brief
            })
            nats.js.publish(subjects.route(tenant, Address.parse(to), Campaign.EngageContact.type), data, { msgID: id }).catch(reject)
          }
        }
        subs.push(
          nats.nc.subscribe(subjects.event(tenant, "campaign", campaignId, Campaign.ContactCompleted.type), {
            callback: (_e, m) => {
              const id = m.json<{ payload: { contactId: string } }>().payload.contactId
              const t = started.get(id)
              if (t === undefined) return
              started.delete(id)
              latencies.push(now() - t)
              inFlight--
              if (latencies.length === n) resolve({ seconds: (now() - t0) / 1000, cpu: cpuMs() - cpu0, latencies })
              else if (inFlight <= window / 2) refill()
            }
          })
        )
        nats.nc.flush().then(refill, reject)
      })
    const warmup = options.warmup ?? 500
    const warm = await phase("skeleton-warm", warmup)
    const contacts =
      options.seconds === undefined
        ? options.contacts
        : Math.min(options.maxContacts ?? Number.POSITIVE_INFINITY, Math.max(options.contacts, Math.round(((warmup / warm.seconds) * options.seconds) / 100) * 100))
    const natsPid = Environment.natsServerPid()
    const nats0 = natsPid === null ? null : Environment.processCpuMs(natsPid)
    traffic.start()
    const r = await phase("skeleton-run", contacts)
    const counted = traffic.stop()
    const nats1 = natsPid === null ? null : Environment.processCpuMs(natsPid)
    return {
      contacts,
      contactsPerSec: contacts / r.seconds,
      cpuMsPerContact: r.cpu / contacts,
      p99Ms: percentile(r.latencies, 99),
      traffic: counted,
      natsCpuMsPerContact: nats0 === null || nats1 === null ? Number.NaN : (nats1 - nats0) / contacts
    }
  } finally {
    for (const s of subs) s.unsubscribe()
    await Effect.runPromise(Scope.close(scope, Exit.void)).catch(() => undefined)
    await runtime.dispose().catch(() => undefined)
    await Environment.destroyPrefix(prefix).catch(() => 0)
    forget()
  }
}
