/**
 * A runtime node in the bench process, composed like the integration tests compose it
 * (`CrmApp.services` over a fresh Postgres database, a deployment on a fresh prefix,
 * `Node.start(CrmApp.nodeOptions)`): every guarantee on, offline model, sandbox channels.
 * Campaigns are started by publishing the start command on NATS, as an external system
 * would, and measured from outside the runtime:
 *
 * - dispatch time of each contact: the envelope timestamp of its `contact.engage`, read by a
 *   plain (core) subscription on the contact mailboxes (one JSON decode per contact);
 * - terminal time: the envelope timestamp of its `event.contact-progress` with phase
 *   `completed`, read from the events stream after the campaign;
 * - CPU: `process.cpuUsage` of this process over the campaign.
 */
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import type { Subscription } from "@nats-io/transport-node"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { ConfigProvider, Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect"
import { CrmApp } from "../../actors/index.js"
import { Deployment } from "../../nats/index.js"
import { NatsClient, type NatsHandle } from "../../nats/NatsClient.js"
import { Campaign, Ids, type Subjects } from "../../protocols/index.js"
import { Metrics, Node } from "../../runtime/index.js"
import * as Database from "../../storage/Database.js"
import { cpuMs, now, onAbort } from "../Bench.js"
import * as Commands from "./Commands.js"
import * as Environment from "./Environment.js"
import * as RoundTrips from "./RoundTrips.js"

/** Options of one campaign. */
export interface CampaignOptions {
  readonly tenant: string
  readonly campaignId: string
  readonly target: number
  /** Record per-contact dispatch times (a subscription on the contact mailboxes). Default false. */
  readonly trace?: boolean
  /** Count NATS traffic during the campaign. Default false. */
  readonly countTraffic?: boolean
  /** Give up waiting for completion after this long; the figures cover what completed. */
  readonly timeoutMs: number
}

/** What one campaign measured. */
export interface CampaignResult {
  /** Contacts that reached a terminal state. */
  readonly completed: number
  readonly skipped: number
  readonly timedOut: boolean
  /** Start command published → campaign completed (or timeout). */
  readonly seconds: number
  readonly cpuMs: number
  /** CPU the nats-server spent meanwhile (NaN when it is not a process of this machine). */
  readonly natsCpuMs: number
  /** Start command published → first `event.contact-progress` received (a contact engaged). */
  readonly firstContactMs: number
  /** Start command published → first `contact.engage` received from a contact mailbox (dispatched). */
  readonly firstDispatchMs: number
  /** Start command published → `event.campaign-started` received (routed, accepted, recorded). */
  readonly acceptedMs: number
  /** Start command published → `event.campaign-planned` received. */
  readonly plannedMs: number
  /** Per contact: `contact.engage` dispatched → terminal event (only with `trace`). */
  readonly latenciesMs: ReadonlyArray<number>
  /** Per contact: dispatched → `engaged` event, i.e. waiting in the mailbox (only with `trace`). */
  readonly queuedMs: ReadonlyArray<number>
  /** When each contact reached its terminal state (its event's time, ms), in order. */
  readonly completedAt: ReadonlyArray<number>
  readonly traffic: RoundTrips.Traffic | null
  /** Node counters accumulated during the campaign. */
  readonly counters: Metrics.Counters
  /** Approvals the plan asked for (granted at once by the bench). */
  readonly approvals: number
  /** Event-loop delay of this process during the campaign: p99 and max, ms. */
  readonly eventLoopDelayP99Ms: number
  readonly eventLoopDelayMaxMs: number
  /**
   * Round trips of a KV put on the node's connection every 300 ms during the campaign (the
   * path of placement heartbeats, whose lateness closes the commit fence).
   */
  readonly kvPutMs: ReadonlyArray<number>
}

/** A running in-process node. */
export interface InProcess {
  readonly prefix: string
  readonly subjects: Subjects.Subjects
  readonly nats: NatsHandle
  readonly loadContacts: (tenant: string, n: number) => Promise<number>
  readonly runCampaign: (options: CampaignOptions) => Promise<CampaignResult>
  readonly close: () => Promise<void>
}

const tsOf = (raw: string): number => {
  // the envelope's `ts` precedes its payload in the encoded JSON
  const at = raw.indexOf('"ts":')
  return at < 0 ? Number.NaN : Number.parseFloat(raw.slice(at + 5, at + 25))
}

const diff = (after: Metrics.Counters, before: Metrics.Counters): Metrics.Counters =>
  Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, (v as number) - ((before as unknown as Record<string, number>)[k] ?? 0)])
  ) as unknown as Metrics.Counters

/** Reads every message stored on `filter` in `stream` (an ordered consumer), oldest first. */
export const readStream = async (nats: NatsHandle, stream: string, filter: string, each: (m: JsMsg) => void): Promise<number> => {
  const consumer = await nats.js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All })
  let n = 0
  try {
    // a fetch returns when it has all it asked for (or at its expiry): ask for what is there
    let pending = (await consumer.info()).num_pending
    while (pending > 0) {
      let last: JsMsg | undefined
      for await (const m of await consumer.fetch({ max_messages: Math.min(2000, pending), expires: 2000 })) {
        each(m)
        last = m
        n++
      }
      if (last === undefined) break
      pending = last.info.pending
    }
  } finally {
    await consumer.delete().catch(() => false)
  }
  return n
}

/** Starts a node on a fresh prefix and a fresh database. */
export const open = async (options: { readonly partitions?: number } = {}): Promise<InProcess> => {
  const db = await Environment.createDatabase()
  const prefix = Environment.freshPrefix()
  const nats = Deployment.layerWith({
    servers: [Environment.natsUrl],
    prefix,
    name: `bench-${prefix}`,
    ...(options.partitions ? { partitions: options.partitions } : {})
  })
  // the bench's settings first, then the environment's
  const config = Layer.setConfigProvider(
    ConfigProvider.fromMap(new Map(Object.entries(Environment.runtimeSettings))).pipe(
      ConfigProvider.orElse(() => ConfigProvider.fromEnv())
    )
  )
  const layer = CrmApp.services(Database.layerUrl(db.url, { applicationName: "nexus-bench" })).pipe(
    Layer.provideMerge(nats),
    Layer.provideMerge(Layer.merge(config, Logger.minimumLogLevel(LogLevel.Warning)))
  )
  const runtime = ManagedRuntime.make(layer)
  const scope = Effect.runSync(Scope.make())
  const cleanup = async () => {
    forget()
    await Effect.runPromise(Scope.close(scope, Exit.void)).catch(() => undefined)
    await runtime.dispose().catch(() => undefined)
    await Environment.destroyPrefix(prefix).catch(() => 0)
    await Environment.dropDatabase(db)
  }
  const forget = onAbort(cleanup)
  try {
    const handle = await runtime.runPromise(NatsClient)
    const { subjects } = await runtime.runPromise(Deployment.Deployment)
    const traffic = RoundTrips.attach(handle.nc, (subject) => subject.includes("-bench-probe"))
    const probeKv = await handle.kvm.create(`${prefix}-bench-probe`, { history: 1 })
    const probeValue = new TextEncoder().encode(JSON.stringify({ at: 0, id: "bench-probe" }))
    const node = await runtime.runPromise(Node.start(CrmApp.nodeOptions).pipe(Scope.extend(scope)))
    // looked up once: it scans /proc (a tenth of the samples around each start in a profile of the start loop)
    const natsPid = Environment.natsServerPid()

    const loadContacts = (tenant: string, n: number) =>
      runtime.runPromise(Environment.loadContacts(Ids.TenantId.make(tenant), n))

    const runCampaign = async (o: CampaignOptions): Promise<CampaignResult> => {
      const tenant = Ids.TenantId.make(o.tenant)
      const campaignId = Ids.CampaignId.make(o.campaignId)
      const evt = (type: string) => subjects.event(tenant, "campaign", campaignId, type)
      const dispatched = new Map<string, number>()
      const subs: Array<Subscription> = []
      let firstContact = Number.NaN
      let firstDispatch = Number.NaN
      let planned = Number.NaN
      let accepted = Number.NaN
      let resolveDone: () => void = () => {}
      const done = new Promise<void>((resolve) => (resolveDone = resolve))
      if (o.trace) {
        subs.push(
          handle.nc.subscribe(`${prefix}.${tenant}.mbox.*.contact.*`, {
            callback: (_e, m) => {
              const id = m.subject.slice(m.subject.lastIndexOf(".") + 1)
              if (!dispatched.has(id)) dispatched.set(id, tsOf(m.string()))
            }
          })
        )
      }
      subs.push(handle.nc.subscribe(evt(Campaign.ContactProgress.type), { max: 1, callback: () => void (firstContact = now()) }))
      subs.push(handle.nc.subscribe(`${prefix}.${tenant}.mbox.*.contact.*`, { max: 1, callback: () => void (firstDispatch = now()) }))
      subs.push(handle.nc.subscribe(evt(Campaign.CampaignPlanned.type), { max: 1, callback: () => void (planned = now()) }))
      subs.push(handle.nc.subscribe(evt(Campaign.CampaignStarted.type), { max: 1, callback: () => void (accepted = now()) }))
      subs.push(handle.nc.subscribe(evt(Campaign.CampaignCompleted.type), { max: 1, callback: () => resolveDone() }))
      // a plan that needs approval is approved at once, as an operator on the dashboard would
      const approved = { count: 0 }
      subs.push(Commands.autoApprove(handle, subjects, tenant, campaignId, approved))
      await handle.nc.flush()

      const cmd = Commands.start(subjects, tenant, campaignId, o.target)
      const before = { ...node.counters }
      const loopDelay = monitorEventLoopDelay({ resolution: 10 })
      loopDelay.enable()
      const kvPutMs: Array<number> = []
      const probe = setInterval(() => {
        const t = now()
        probeKv.put("probe", probeValue).then(() => kvPutMs.push(now() - t), () => kvPutMs.push(Number.POSITIVE_INFINITY))
      }, 300)
      if (o.countTraffic) traffic.start()
      const nats0 = natsPid === null ? null : Environment.processCpuMs(natsPid)
      const cpu0 = cpuMs()
      const t0 = now()
      await handle.js.publish(cmd.subject, cmd.data, { msgID: cmd.id })
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        done.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), o.timeoutMs)))
      ])
      clearTimeout(timer)
      clearInterval(probe)
      loopDelay.disable()
      const t1 = now()
      const cpu1 = cpuMs()
      const nats1 = natsPid === null ? null : Environment.processCpuMs(natsPid)
      const counted = o.countTraffic ? traffic.stop() : null
      const counters = diff(node.counters, before)
      for (const s of subs) s.unsubscribe()

      // terminal and engaged events, from the stream
      const terminal = new Map<string, number>()
      const engaged = new Map<string, number>()
      let skipped = 0
      await readStream(handle, subjects.streams.events, evt(Campaign.ContactProgress.type), (m) => {
        const e = m.json<{ ts: number; payload: { contactId: string; phase: string; status: string | null } }>()
        if (e.payload.phase === "engaged") engaged.set(e.payload.contactId, e.ts)
        else if (e.payload.phase === "completed" && !terminal.has(e.payload.contactId)) {
          terminal.set(e.payload.contactId, e.ts)
          if (e.payload.status === "skipped") skipped++
        }
      })
      const latenciesMs: Array<number> = []
      const queuedMs: Array<number> = []
      for (const [id, t] of dispatched) {
        const end = terminal.get(id)
        if (end !== undefined) latenciesMs.push(end - t)
        const start = engaged.get(id)
        if (start !== undefined) queuedMs.push(start - t)
      }
      return {
        completed: terminal.size,
        skipped,
        timedOut,
        seconds: (t1 - t0) / 1000,
        cpuMs: cpu1 - cpu0,
        natsCpuMs: nats0 === null || nats1 === null ? Number.NaN : nats1 - nats0,
        firstContactMs: firstContact - t0,
        firstDispatchMs: firstDispatch - t0,
        acceptedMs: accepted - t0,
        plannedMs: planned - t0,
        latenciesMs,
        queuedMs,
        completedAt: [...terminal.values()].sort((a, b) => a - b),
        traffic: counted,
        counters,
        approvals: approved.count,
        eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        eventLoopDelayMaxMs: loopDelay.max / 1e6,
        kvPutMs
      }
    }

    return { prefix, subjects, nats: handle, loadContacts, runCampaign, close: cleanup }
  } catch (e) {
    await cleanup()
    throw e
  }
}
