/**
 * The bench side of runs on worker processes: a fresh database (migrated, contacts loaded
 * through the repositories), a fresh prefix, a NATS connection with the runtime's connect
 * options, and the campaign commands and readings (deliveries in the ledger, progress and
 * completion events). Workers are spawned against its prefix and database.
 */
import type { Subscription } from "@nats-io/transport-node"
import { ConfigProvider, Effect, Layer, ManagedRuntime } from "effect"
import { connectWith, type NatsHandle } from "../../nats/NatsClient.js"
import { Campaign, Ids, Subjects } from "../../protocols/index.js"
import * as ContactRepo from "../../storage/ContactRepo.js"
import * as Database from "../../storage/Database.js"
import * as DeliveryLedger from "../../storage/DeliveryLedger.js"
import { onAbort } from "../Bench.js"
import * as Commands from "./Commands.js"
import * as Environment from "./Environment.js"

/** Progress of one campaign as its events report it. */
export interface Progress {
  completed: number
  /** performance.now() of the last progress or completion event. */
  at: number
  done: boolean
}

/** The bench side of a worker run. */
export interface Driver {
  readonly prefix: string
  readonly database: Environment.FreshDatabase
  readonly nats: NatsHandle
  readonly subjects: Subjects.Subjects
  readonly loadContacts: (tenant: string, n: number) => Promise<number>
  /** Starts a campaign; its progress is followed from then on. */
  readonly start: (tenant: string, campaignId: string, target: number) => Promise<Progress>
  /** Deliveries the sandbox ledger recorded for a campaign (one per contact that got that far). */
  readonly deliveries: (tenant: string, campaignId: string) => Promise<number>
  /** Moves to a fresh prefix (the old one's streams and buckets are deleted); same database. */
  readonly renew: () => Promise<void>
  readonly close: () => Promise<void>
}

/** Opens a driver on a fresh database and prefix. */
export const open = async (): Promise<Driver> => {
  const database = await Environment.createDatabase()
  const config = Layer.setConfigProvider(
    ConfigProvider.fromMap(new Map(Object.entries(Environment.runtimeSettings))).pipe(
      ConfigProvider.orElse(() => ConfigProvider.fromEnv())
    )
  )
  const repos = Layer.mergeAll(ContactRepo.layer, DeliveryLedger.layer).pipe(
    Layer.provide(Database.layerUrl(database.url, { maxConnections: 2, applicationName: "nexus-bench-driver" })),
    Layer.provide(config)
  )
  const runtime = ManagedRuntime.make(repos)
  let nats: NatsHandle | null = null
  let prefix = Environment.freshPrefix()
  const subs: Array<Subscription> = []
  const close = async () => {
    forget()
    for (const s of subs) s.unsubscribe()
    if (nats) await nats.nc.drain().catch(() => nats?.nc.close())
    await runtime.dispose().catch(() => undefined)
    await Environment.destroyPrefix(prefix).catch(() => 0)
    await Environment.dropDatabase(database)
  }
  const forget = onAbort(close)
  try {
    await runtime.runPromise(Effect.void) // builds the layers: migrates the database
    nats = await Effect.runPromise(connectWith([Environment.natsUrl], "bench-driver"))
    const handle = nats
    const self: Driver = {
      get prefix() {
        return prefix
      },
      database,
      nats: handle,
      get subjects() {
        return Subjects.make(prefix, 32)
      },
      loadContacts: (tenant, n) => runtime.runPromise(Environment.loadContacts(Ids.TenantId.make(tenant), n)),
      start: async (tenant, campaignId, target) => {
        const subjects = self.subjects
        const progress: Progress = { completed: 0, at: performance.now(), done: false }
        const on = (type: string, f: (counts: Campaign.CampaignCounts) => void) =>
          subs.push(
            handle.nc.subscribe(Commands.eventSubject(subjects, tenant, campaignId, type), {
              callback: (_e, m) => {
                const p = m.json<{ payload: { counts?: Campaign.CampaignCounts; summary?: { counts: Campaign.CampaignCounts } } }>().payload
                const counts = p.counts ?? p.summary?.counts
                if (counts) f(counts)
              }
            })
          )
        on(Campaign.CampaignProgress.type, (c) => {
          progress.completed = Math.max(progress.completed, c.completed)
          progress.at = performance.now()
        })
        on(Campaign.CampaignCompleted.type, (c) => {
          progress.completed = c.completed
          progress.at = performance.now()
          progress.done = true
        })
        subs.push(Commands.autoApprove(handle, subjects, tenant, campaignId))
        await handle.nc.flush()
        const cmd = Commands.start(subjects, tenant, campaignId, target)
        await handle.js.publish(cmd.subject, cmd.data, { msgID: cmd.id })
        return progress
      },
      deliveries: (tenant, campaignId) =>
        runtime.runPromise(
          Effect.flatMap(DeliveryLedger.DeliveryLedger, (l) =>
            l.countByCampaign(Ids.TenantId.make(tenant), Ids.CampaignId.make(campaignId))
          )
        ),
      renew: async () => {
        for (const s of subs.splice(0)) s.unsubscribe()
        await Environment.destroyPrefix(prefix).catch(() => 0)
        prefix = Environment.freshPrefix()
      },
      close
    }
    return self
  } catch (e) {
    await close()
    throw e
  }
}
