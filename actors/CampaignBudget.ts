/**
 * A campaign's budget (actions and money), kept by the campaign actor, its only writer.
 *
 * - Before a contact is engaged its worst case is reserved: one action per touch, and per
 *   touch the most expensive channel of the sequence plus the model calls of a draft and an
 *   analysis (`ChannelPrices`). The contact actor holds that allowance and never spends past
 *   it: model calls are capped to what is left (the router skips models whose worst case
 *   does not fit), a touch that no longer fits is not made.
 * - When the contact finishes, the campaign settles: the reservation is released and what
 *   it actually spent is charged; the unused part is free again.
 * - Reservations are part of the actor's committed state, so no crash and no interleaving
 *   of nodes can reserve twice or lose a settlement: spent + reserved never exceeds the limit.
 * - When the next contact no longer fits and nothing is in flight to be refunded, the
 *   campaign pauses with `BudgetExhausted`: which budget, its limit, what is used, what the
 *   next contact needs. Raising the budget (edit) and resuming continues it.
 */
import { Effect, Schema } from "effect"
import { Address, Campaign, Control } from "../protocols/index.js"
import type { Actor } from "../runtime/index.js"
import * as ChannelPrices from "./channels/ChannelPrices.js"
import { TenantBudget } from "./TenantBudget.js"

/** Reserved and spent, per kind. */
export const Ledger = Schema.Struct({
  reservedActions: Schema.Int,
  reservedUsd: Schema.Number,
  spentActions: Schema.Int,
  spentUsd: Schema.Number
})
export type Ledger = typeof Ledger.Type

/** Nothing reserved or spent. */
export const empty: Ledger = { reservedActions: 0, reservedUsd: 0, spentActions: 0, spentUsd: 0 }

/** The share of the money budget the planner's model calls may use. */
export const PLANNING_SHARE = 0.1

/** What one contact of a plan may spend at most: its touches' worst case. */
export const allowanceOf = (plan: Campaign.Plan): Campaign.Spend => {
  const touches = plan.sequence?.maxTouches ?? 1
  const perTouch = Math.max(...plan.channelSequence.map(ChannelPrices.reserveUsd)) + ChannelPrices.LLM_PER_TOUCH_USD
  return { actions: touches, usd: round(touches * perTouch) }
}

const round = (usd: number) => Math.round(usd * 1e9) / 1e9

/** How many of `want` contacts the budget can reserve now, and which budget limits it. */
export const affordable = (
  budget: Campaign.Budget,
  ledger: Ledger,
  per: Campaign.Spend,
  want: number
): { readonly n: number; readonly limitedBy: "actions" | "cost" | null } => {
  const byActions = Math.floor((budget.maxActions - ledger.spentActions - ledger.reservedActions) / per.actions)
  const byCost = per.usd > 0 ? Math.floor((budget.maxCostUsd - ledger.spentUsd - ledger.reservedUsd + 1e-9) / per.usd) : want
  const n = Math.max(0, Math.min(want, byActions, byCost))
  return { n, limitedBy: n >= want ? null : byActions <= byCost ? "actions" : "cost" }
}

/** Reserves `n` contacts' allowances. */
export const reserve = (ledger: Ledger, per: Campaign.Spend, n: number): Ledger => ({
  ...ledger,
  reservedActions: ledger.reservedActions + n * per.actions,
  reservedUsd: round(ledger.reservedUsd + n * per.usd)
})

/** A contact finished: its reservation is released and what it spent is charged. */
export const settle = (ledger: Ledger, per: Campaign.Spend | null, spent: Campaign.Spend | undefined): Ledger => ({
  reservedActions: Math.max(0, ledger.reservedActions - (per?.actions ?? 0)),
  reservedUsd: Math.max(0, round(ledger.reservedUsd - (per?.usd ?? 0))),
  spentActions: ledger.spentActions + (spent?.actions ?? 0),
  spentUsd: round(ledger.spentUsd + (spent?.usd ?? 0))
})

/** Charges money spent outside a contact (the planner's model calls). */
export const charge = (ledger: Ledger, usd: number): Ledger => ({ ...ledger, spentUsd: round(ledger.spentUsd + usd) })

/** What `event.budget-exhausted` says besides the campaign: which budget, its limit, used, requested. */
export type Shortfall = Omit<typeof Control.BudgetExhausted.payload.Type, "campaignId">

/** The campaign's own budget that ran out, and by how much. */
export const campaignShortfall = (budget: Campaign.Budget, ledger: Ledger, per: Campaign.Spend, which: "actions" | "cost"): Shortfall => ({
  scope: "campaign",
  budget: which,
  limit: which === "actions" ? budget.maxActions : budget.maxCostUsd,
  used: which === "actions" ? ledger.spentActions + ledger.reservedActions : round(ledger.spentUsd + ledger.reservedUsd),
  requested: which === "actions" ? per.actions : per.usd
})

/** Says on the campaign's topic which budget ran out and by how much. */
export const announce = (ctx: Actor.ActorContext, campaignId: Campaign.StartPayload["campaignId"], shortfall: Shortfall) =>
  ctx.send(Address.topic("campaign", campaignId), Control.BudgetExhausted, { campaignId, ...shortfall })

/** Contacts' allowances a campaign takes of its tenant's budget at a time (fewer round trips). */
export const TENANT_CHUNK = 256

/**
 * How many of `n` contacts also fit the tenant's budget. The campaign holds a grant of it
 * (an absolute amount, so a re-run writes the same value); when the grant does not cover
 * them it asks for more, a chunk ahead, or for what is left.
 */
export const withinTenant = (
  s: {
    readonly spec: Campaign.StartPayload | null
    readonly budget: Ledger
    readonly tenantGrant: Campaign.Spend | null
  },
  ctx: Actor.ActorContext,
  per: Campaign.Spend,
  n: number
) =>
  Effect.gen(function* () {
    const held = { actions: s.budget.spentActions + s.budget.reservedActions, usd: round(s.budget.spentUsd + s.budget.reservedUsd) }
    const need = (k: number) => ({ actions: held.actions + k * per.actions, usd: round(held.usd + k * per.usd) })
    const covered = (g: Campaign.Spend | null, k: number) => g !== null && need(k).actions <= g.actions && need(k).usd <= g.usd + 1e-9
    if (covered(s.tenantGrant, n)) return { n, grant: s.tenantGrant, shortfall: null }
    const budgets = yield* TenantBudget
    const campaignId = s.spec!.campaignId
    const ahead = need(n + TENANT_CHUNK)
    const ask = { actions: Math.min(ahead.actions, Math.max(need(n).actions, s.spec!.budget.maxActions)), usd: Math.min(ahead.usd, Math.max(need(n).usd, s.spec!.budget.maxCostUsd)) }
    const first = yield* budgets.grant(ctx.tenant, campaignId, ask)
    if (first._tag === "Granted") return { n, grant: first.grant, shortfall: null }
    // not all of it: as many as what is left allows
    const k = Math.min(
      n,
      Math.floor((first.available.actions - held.actions) / per.actions),
      per.usd > 0 ? Math.floor((first.available.usd - held.usd + 1e-9) / per.usd) : n
    )
    if (k > 0) {
      const second = yield* budgets.grant(ctx.tenant, campaignId, need(k))
      if (second._tag === "Granted") return { n: k, grant: second.grant, shortfall: null }
    }
    const shortfall: Shortfall = {
      scope: "tenant",
      budget: first.budget,
      limit: first.limit,
      used: first.used,
      requested: first.budget === "actions" ? per.actions : per.usd
    }
    return { n: 0, grant: s.tenantGrant, shortfall }
  })
