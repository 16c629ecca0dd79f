/**
 * The same-run baseline: the least a durable 4-step contact pipeline can do on this NATS
 * server with this client. One work-queue stream, a durable pull consumer per step
 * (lock = KV `create`, content, execute, analyse), each message acked after the next step
 * is published; no budgets, no actor state, no events, no database. Connected with the
 * runtime's own connect options (`NatsClient.connectWith`), fed in the runtime's campaign
 * window (at most `window` contacts in flight, refilled at half), every handler concurrent.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream"
import { Effect } from "effect"
import * as OfflineModel from "../../actors/OfflineModel.js"
import { connectWith } from "../../nats/NatsClient.js"
import { nanos } from "../../nats/Topology.js"
import type { Campaign } from "../../protocols/index.js"
import { cpuMs, now, onAbort, percentile } from "../Bench.js"
import { contact, destroyPrefix, freshPrefix, goal, natsServerPid, natsUrl, processCpuMs } from "./Environment.js"
import * as RoundTrips from "./RoundTrips.js"

/** What one baseline run measured. */
export interface BaselineResult {
  readonly contacts: number
  readonly seconds: number
  readonly contactsPerSec: number
  readonly cpuMsPerContact: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly traffic: RoundTrips.Traffic
  /** CPU the nats-server spent per contact (NaN when it is not a process of this machine). */
  readonly natsCpuMsPerContact: number
}

/** Options of a baseline run. */
export interface BaselineOptions {
  /** Contacts measured (at most, when `seconds` is given). */
  readonly contacts: number
  /** Size the measured run to last about this long at the warm-up's rate (at least 5,000 contacts). */
  readonly seconds?: number
  /** Contacts run first to warm up (not measured). Default 1,000. */
  readonly warmup?: number
  /** Contacts in flight at most (the runtime's campaign window). Default 512. */
  readonly window?: number
}

const steps = ["lock", "content", "execute", "analyse"] as const
type Step = (typeof steps)[number]

const brief: Campaign.Brief = OfflineModel.brief(goal)

/** Runs the baseline pipeline; everything it creates is deleted before it returns. */
export const run = async (options: BaselineOptions): Promise<BaselineResult> => {
  const prefix = freshPrefix()
  const forget = onAbort(() => destroyPrefix(prefix).then(() => undefined))
  const stream = `${prefix.toUpperCase()}_BASE`
  const subject = (step: Step) => `${prefix}.base.${step}`
  const handle = await Effect.runPromise(connectWith([natsUrl], `bench-baseline-${prefix}`))
  const { nc, js, jsm, kvm } = handle
  const traffic = RoundTrips.attach(nc)
  const loops: Array<ConsumerMessages> = []
  try {
    await jsm.streams.add({
      name: stream,
      subjects: [`${prefix}.base.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: 1,
      duplicate_window: nanos(120_000)
    })
    const kv = await kvm.create(`${prefix}-base-locks`, { history: 1, ttl: 5 * 60_000 })
    for (const step of steps) {
      await jsm.consumers.add(stream, {
        durable_name: `base-${step}`,
        filter_subject: subject(step),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(15_000),
        max_deliver: 20,
        max_ack_pending: 4096
      })
    }

    const enc = new TextEncoder()
    const dec = new TextDecoder()
    const json = (m: JsMsg) => JSON.parse(dec.decode(m.data))
    const publish = (step: Step, body: unknown) => js.publish(subject(step), enc.encode(JSON.stringify(body)))

    // per phase: when each contact entered, and what to do when one finishes
    let started = new Map<string, number>()
    let onDone: (id: string) => void = () => {}

    const handlers: Record<Step, (m: JsMsg) => Promise<void>> = {
      lock: async (m) => {
        const { t, c } = json(m) as { t: string; c: Campaign.ContactSnapshot }
        await kv.create(`contact.${t}.${c.id}`, enc.encode(JSON.stringify({ h: `campaign:${prefix}`, t: Date.now() })))
        await publish("content", { c, channel: "email" })
        m.ack()
      },
      content: async (m) => {
        const { c } = json(m) as { c: Campaign.ContactSnapshot }
        const draft = OfflineModel.draft(c, "email", brief)
        await publish("execute", { id: c.id, to: c.email, subject: draft.subject, body: draft.body, leadScore: c.leadScore })
        m.ack()
      },
      execute: async (m) => {
        const r = json(m) as { id: string; leadScore: number }
        await publish("analyse", { id: r.id, outcome: "sent", transcript: null, leadScore: r.leadScore })
        m.ack()
      },
      analyse: async (m) => {
        const r = json(m) as { id: string; leadScore: number }
        OfflineModel.analyse({ outcome: "sent", transcript: null, leadScore: r.leadScore })
        m.ack()
        onDone(r.id)
      }
    }

    let onFailure: (e: unknown) => void = () => {}
    for (const step of steps) {
      const consumer = await js.consumers.get(stream, `base-${step}`)
      const messages = await consumer.consume({ max_messages: 512 })
      loops.push(messages)
      void (async () => {
        for await (const m of messages) {
          handlers[step](m).catch((e) => {
            m.nak(100)
            onFailure(e)
          })
        }
      })()
    }

    const phase = (tag: string, n: number, window: number) =>
      new Promise<{ seconds: number; cpu: number; latencies: Array<number> }>((resolve, reject) => {
        const tenant = `bench-${tag}`
        const contacts = Array.from({ length: n }, (_, i) => contact(tenant, i + 1))
        started = new Map()
        onFailure = (e) => reject(new Error(`baseline step failed: ${e instanceof Error ? e.message : String(e)}`))
        const latencies: Array<number> = []
        let next = 0
        let inFlight = 0
        const t0 = now()
        const cpu0 = cpuMs()
        const refill = () => {
          const batch: Array<Promise<unknown>> = []
          while (inFlight < window && next < n) {
            const c = contacts[next++]!
            inFlight++
            started.set(c.id, now())
            batch.push(publish("lock", { t: tenant, c }))
          }
          Promise.all(batch).catch(reject)
        }
        onDone = (id) => {
          const t = started.get(id)
          if (t === undefined) return // a redelivery of a contact already done
          started.delete(id)
          latencies.push(now() - t)
          inFlight--
          if (latencies.length === n) return resolve({ seconds: (now() - t0) / 1000, cpu: cpuMs() - cpu0, latencies })
          if (inFlight <= window / 2) refill()
        }
        refill()
      })

    const window = options.window ?? 512
    const warmup = options.warmup ?? 1000
    const warm = await phase("warm", warmup, window)
    const contacts =
      options.seconds === undefined
        ? options.contacts
        : Math.min(options.contacts, Math.max(5000, Math.round(((warmup / warm.seconds) * options.seconds) / 1000) * 1000))
    const natsPid = natsServerPid()
    const nats0 = natsPid === null ? null : processCpuMs(natsPid)
    traffic.start()
    const measured = await phase("run", contacts, window)
    const counted = traffic.stop()
    const nats1 = natsPid === null ? null : processCpuMs(natsPid)
    return {
      contacts,
      seconds: measured.seconds,
      contactsPerSec: contacts / measured.seconds,
      cpuMsPerContact: measured.cpu / contacts,
      p50Ms: percentile(measured.latencies, 50),
      p99Ms: percentile(measured.latencies, 99),
      traffic: counted,
      natsCpuMsPerContact: nats0 === null || nats1 === null ? Number.NaN : (nats1 - nats0) / contacts
    }
  } finally {
    for (const m of loops) await m.close().catch(() => undefined)
    await nc.drain().catch(() => nc.close())
    await destroyPrefix(prefix).catch(() => 0)
    forget()
  }
}
