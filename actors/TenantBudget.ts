/**
 * Tenant budgets: a tenant's limit on actions and money across all its campaigns, in the
 * deployment's budget bucket (`tenant.<tenant>`), compare-and-set.
 *
 * Each campaign holds a *grant* of the tenant budget and reserves its contacts within it
 * (see `CampaignBudget`). A grant is written as an absolute amount per campaign, not as an
 * increment, so a campaign actor that re-runs a step after a crash writes the same value
 * again and nothing is counted twice. Grants are taken in chunks, so campaign actors on
 * many nodes touch the key rarely. A finished campaign's grant shrinks to what it spent.
 * The sum of grants never exceeds the limit: every write is revision-checked against the
 * value it was computed from. A tenant without a limit costs no round trip.
 */
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer } from "effect"
import { apiCode } from "../nats/Errors.js"
import { NatsClient } from "../nats/NatsClient.js"
import { NatsConfig } from "../nats/NatsConfig.js"
import { buckets } from "../nats/Topology.js"
import type { Campaign } from "../protocols/index.js"
import { KvFailed } from "../runtime/Errors.js"

/** A tenant's budget record. */
export interface TenantRecord {
  /** The limit (null: none). */
  readonly limit: Campaign.Spend | null
  /** What each campaign holds; `closed`: finished, the grant is what it spent. */
  readonly grants: Readonly<Record<string, Campaign.Spend & { readonly closed?: boolean }>>
}

/** The answer to a grant request. */
export type Grant =
  | { readonly _tag: "Granted"; readonly grant: Campaign.Spend | null }
  | {
      readonly _tag: "Refused"
      readonly budget: "actions" | "cost"
      readonly limit: number
      /** Held by the tenant's campaigns, this one's current grant included. */
      readonly used: number
      /** What this campaign asked to hold in all. */
      readonly requested: number
      /** The most this campaign could hold now. */
      readonly available: Campaign.Spend
    }

/** The service. */
export interface TenantBudgetService {
  /** Sets what `campaignId` holds of its tenant's budget to `want` (absolute; idempotent). */
  readonly grant: (tenant: string, campaignId: string, want: Campaign.Spend) => Effect.Effect<Grant, KvFailed>
  /** A campaign finished: its grant becomes what it spent. */
  readonly close: (tenant: string, campaignId: string, spent: Campaign.Spend) => Effect.Effect<void, KvFailed>
  /** Sets a tenant's limit (null removes it). */
  readonly setLimit: (tenant: string, limit: Campaign.Spend | null) => Effect.Effect<void, KvFailed>
  readonly get: (tenant: string) => Effect.Effect<TenantRecord | null, KvFailed>
}

/** Tenant budgets. */
export class TenantBudget extends Context.Tag("nexus/TenantBudget")<TenantBudget, TenantBudgetService>() {}

const enc = new TextEncoder()
const dec = new TextDecoder()
const round = (usd: number) => Math.round(usd * 1e9) / 1e9
const keyOf = (tenant: string) => `tenant.${tenant}`

/** Tenant budgets over a KV bucket. */
export const make = (kv: KV): TenantBudgetService => {
  const read = (tenant: string) =>
    Effect.tryPromise({
      try: async () => {
        const e = await kv.get(keyOf(tenant))
        if (e === null || e.operation !== "PUT") return { record: null, revision: 0 }
        return { record: JSON.parse(dec.decode(e.value)) as TenantRecord, revision: e.revision }
      },
      catch: (cause) => new KvFailed({ operation: "get", key: keyOf(tenant), message: String(cause), cause })
    })

  /** Read, change, write back revision-checked; again on a conflict. */
  const modify = <A>(tenant: string, f: (r: TenantRecord | null) => { readonly next: TenantRecord | null; readonly result: A }): Effect.Effect<A, KvFailed> =>
    read(tenant).pipe(
      Effect.flatMap(({ record, revision }) => {
        const { next, result } = f(record)
        if (next === null || next === record) return Effect.succeed(result)
        const bytes = enc.encode(JSON.stringify(next))
        return Effect.tryPromise({
          try: () => (revision === 0 ? kv.create(keyOf(tenant), bytes) : kv.update(keyOf(tenant), bytes, revision)),
          catch: (cause) => cause
        }).pipe(
          Effect.as(result),
          Effect.catchAll((cause) =>
            apiCode(cause) === 10071
              ? modify(tenant, f)
              : Effect.fail(new KvFailed({ operation: "update", key: keyOf(tenant), message: String(cause), cause }))
          )
        )
      })
    )

  const heldBy = (r: TenantRecord, except: string) =>
    Object.entries(r.grants).reduce(
      (acc, [id, g]) => (id === except ? acc : { actions: acc.actions + g.actions, usd: round(acc.usd + g.usd) }),
      { actions: 0, usd: 0 }
    )

  return {
    grant: (tenant, campaignId, want) =>
      modify(tenant, (r): { next: TenantRecord | null; result: Grant } => {
        if (r === null || r.limit === null) return { next: null, result: { _tag: "Granted", grant: null } }
        const cur = r.grants[campaignId]
        if (cur !== undefined && cur.actions === want.actions && cur.usd === want.usd) return { next: r, result: { _tag: "Granted", grant: want } }
        const others = heldBy(r, campaignId)
        const available = { actions: r.limit.actions - others.actions, usd: round(r.limit.usd - others.usd) }
        if (want.actions > available.actions || want.usd > available.usd + 1e-9) {
          const byActions = want.actions > available.actions
          return {
            next: null,
            result: {
              _tag: "Refused",
              budget: byActions ? "actions" : "cost",
              limit: byActions ? r.limit.actions : r.limit.usd,
              used: byActions ? others.actions + (cur?.actions ?? 0) : round(others.usd + (cur?.usd ?? 0)),
              requested: byActions ? want.actions : want.usd,
              available
            }
          }
        }
        return { next: { ...r, grants: { ...r.grants, [campaignId]: { actions: want.actions, usd: round(want.usd) } } }, result: { _tag: "Granted", grant: want } }
      }),
    close: (tenant, campaignId, spent) =>
      modify(tenant, (r) =>
        r === null || r.grants[campaignId] === undefined || r.grants[campaignId]!.closed
          ? { next: null, result: undefined }
          : { next: { ...r, grants: { ...r.grants, [campaignId]: { actions: spent.actions, usd: round(spent.usd), closed: true } } }, result: undefined }
      ),
    setLimit: (tenant, limit) => modify(tenant, (r) => ({ next: { limit, grants: r?.grants ?? {} }, result: undefined })),
    get: (tenant) => read(tenant).pipe(Effect.map((x) => x.record))
  }
}

/** Tenant budgets in the deployment's budget bucket. */
export const layer: Layer.Layer<TenantBudget, KvFailed, NatsClient | NatsConfig> = Layer.effect(
  TenantBudget,
  Effect.gen(function* () {
    const { kvm } = yield* NatsClient
    const cfg = yield* NatsConfig
    const name = buckets(cfg.prefix).budgets
    const kv = yield* Effect.tryPromise({
      try: () => kvm.open(name),
      catch: (cause) => new KvFailed({ operation: "open", key: name, message: String(cause), cause })
    })
    return make(kv)
  })
)
