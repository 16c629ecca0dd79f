/**
 * Runs one planner action while planning and says what became of it. Read-only actions
 * (data queries, analyses) run against the contact records, the knowledge port and the
 * offline heuristics and return an observation; CRM writes (create a task, log an activity,
 * propose a meeting) run at once, exactly once per planner step: the action ledger records
 * the step's key before the write, in the same transaction, and a re-run of the step finds
 * it; outreach actions are checked (channel enabled, audience never wider than the campaign
 * asked) and taken into the plan, with an approval when their volume is high; workflow
 * control (pause, adjust priority, escalate) waits for a person's confirmation.
 */
import { createHash } from "node:crypto"
import { Effect } from "effect"
import type { AudienceFilter, Channel } from "../../protocols/Campaign.js"
import type { TenantId } from "../../protocols/Ids.js"
import type { StepStatus } from "../../protocols/Planner.js"
import { ContactId } from "../../protocols/Ids.js"
import { ActionLedger } from "../../storage/ActionLedger.js"
import { ContactRepo } from "../../storage/ContactRepo.js"
import { Records } from "../../storage/Records.js"
import * as Risk from "../guardrails/Risk.js"
import * as Offline from "../OfflineModel.js"
import type { Action } from "./Actions.js"
import { info } from "./Actions.js"
import { Knowledge } from "./Knowledge.js"

/** What the campaign asked for: the bounds every action stays within. */
export interface Constraints {
  readonly campaignId: string
  readonly audience: AudienceFilter
  readonly channels: ReadonlyArray<Channel>
  readonly targetCount: number
}

/** The planner step an action runs in. */
export interface Step {
  readonly index: number
  /** The step's idempotency key, `<tenant>/<campaignId>/plan-step/<index>`: one effect per step, however often it runs. */
  readonly key: string
  /** When the step was asked for (epoch ms, from its message): dates count from it, so a re-run computes the same rows. */
  readonly at: number
}

/** The idempotency key of a planner step. */
export const stepKey = (tenant: TenantId, campaignId: string, index: number) => `${tenant}/${campaignId}/plan-step/${index}`

/** The approval id of a workflow-control action, derived from its step. */
export const approvalIdOf = (campaignId: string, step: number, action: string) => `${campaignId}-step${step}-${action}`

/** A record id derived from a step key (the same step always writes the same row). */
export const recordId = (kind: string, key: string) => `${kind}-${createHash("sha256").update(key).digest("base64url").slice(0, 20)}`

const DAY_MS = 86_400_000

/** The result of an action. */
export interface ActionResult {
  readonly status: StepStatus
  readonly observation: string
  readonly data: Record<string, unknown>
}

const both = <A>(a: ReadonlyArray<A> | undefined, b: ReadonlyArray<A> | undefined) =>
  a === undefined ? b : b === undefined ? a : a.filter((x) => b.includes(x))

/**
 * A filter never wider than `requested`: list fields intersect, the lead-score floor is the
 * higher one, and keywords the campaign asked for stay.
 */
export const narrow = (requested: AudienceFilter, proposed: AudienceFilter): AudienceFilter => {
  const out: { -readonly [K in keyof AudienceFilter]: AudienceFilter[K] } = {}
  const segments = both(requested.segments, proposed.segments)
  const industries = both(requested.industries, proposed.industries)
  const regions = both(requested.regions, proposed.regions)
  const titleKeywords = requested.titleKeywords ?? proposed.titleKeywords
  const floor = Math.max(requested.minLeadScore ?? -1, proposed.minLeadScore ?? -1)
  if (segments !== undefined) out.segments = segments
  if (industries !== undefined) out.industries = industries
  if (regions !== undefined) out.regions = regions
  if (titleKeywords !== undefined) out.titleKeywords = titleKeywords
  if (floor >= 0) out.minLeadScore = floor
  return out
}

const result = (status: StepStatus, observation: string, data: Record<string, unknown> = {}): ActionResult => ({ status, observation, data })

const safeId = (id: string) => ContactId.make(id.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64) || "none")

type Write = Extract<Action, { readonly _tag: "create_task" | "log_activity" | "schedule_meeting" }>

/**
 * A CRM write, once per step: the ledger records the step key, the write runs and its
 * outcome is recorded, in one transaction (audited with the fiber's acting principal).
 */
const write = (tenant: TenantId, c: Constraints, step: Step, action: Write) =>
  Effect.gen(function* () {
    const ledger = yield* ActionLedger
    const records = yield* Records
    const contacts = yield* ContactRepo
    const { _tag, ...input } = action
    const execute = Effect.gen(function* () {
      switch (action._tag) {
        case "create_task": {
          const id = recordId("task", step.key)
          const dueAt = new Date(step.at + action.dueInDays * DAY_MS)
          yield* records.createTask(tenant, { id, title: action.title, contactId: null, campaignId: c.campaignId, dueAt, status: "open" })
          return { outcome: "executed", result: { taskId: id, dueAt: dueAt.toISOString() } }
        }
        case "log_activity": {
          const found = yield* contacts.get(tenant, safeId(action.contactId))
          if (found._tag === "None") return { outcome: "refused", result: { reason: `no contact ${action.contactId}` } }
          const id = recordId("act", step.key)
          yield* records.recordActivities(tenant, [
            { id, kind: "note", contactId: found.value.id, companyId: null, dealId: null, subject: action.note, occurredAt: new Date(step.at), episodeId: null }
          ])
          return { outcome: "executed", result: { activityId: id, contactId: found.value.id } }
        }
        case "schedule_meeting": {
          const found = yield* contacts.get(tenant, safeId(action.contactId))
          if (found._tag === "None") return { outcome: "refused", result: { reason: `no contact ${action.contactId}` } }
          const id = recordId("mtg", step.key)
          const latest = new Date(step.at + action.withinDays * DAY_MS)
          yield* records.proposeMeeting(tenant, {
            id, contactId: found.value.id, campaignId: c.campaignId, status: "proposed", earliest: new Date(step.at), latest
          })
          return { outcome: "executed", result: { meetingId: id, contactId: found.value.id, latest: latest.toISOString() } }
        }
      }
    })
    const done = yield* ledger.once(tenant, { idempotencyKey: step.key, agent: "planner", action: _tag, input }, execute)
    if (done.duplicate) yield* Effect.logInfo(`planner step ${step.key}: ${_tag} was recorded by an earlier run; not written again`)
    if (done.outcome !== "executed") return result("refused", String(done.result.reason ?? `${_tag} refused`), done.result)
    const what =
      action._tag === "create_task"
        ? `task "${action.title}" created, due ${String(done.result.dueAt).slice(0, 10)}`
        : action._tag === "log_activity"
          ? `note logged on ${action.contactId}`
          : `meeting with ${action.contactId} proposed within ${action.withinDays} days`
    return result("executed", what, done.result)
  })

/** Runs `action` for the campaign `c` of `tenant`, in planner step `step`. */
export const run = Effect.fn("ActionRunner.run")(function* (tenant: TenantId, c: Constraints, action: Action, step: Step) {
  const contacts = yield* ContactRepo
  const knowledge = yield* Knowledge
  const contact = (id: string) => contacts.get(tenant, safeId(id))
  switch (action._tag) {
    case "query_contacts": {
      const filter = narrow(c.audience, action.filter)
      const { matching, contacts: top } = yield* contacts.survey(tenant, filter, 3)
      const best = top.map((t) => `${t.id} ${t.title}@${t.company} (${t.leadScore})`).join("; ")
      return result("observed", `${matching} contacts match ${JSON.stringify(filter)}${best ? `; best: ${best}` : ""}`, {
        matching,
        filter,
        top: top.map((t) => t.id)
      })
    }
    case "query_companies": {
      const list = yield* knowledge.companies(tenant, narrow(c.audience, action.filter), action.limit)
      return result("observed", `${list.length} companies: ${list.slice(0, 5).map((x) => `${x.company} (${x.contacts} contacts)`).join(", ")}`, { companies: list.length })
    }
    case "query_deals": {
      const deals = yield* knowledge.deals(tenant, action.stage, action.limit)
      const total = deals.reduce((n, d) => n + d.amountUsd, 0)
      return result("observed", `${deals.length} open deals worth $${total}`, { deals: deals.length, totalUsd: total })
    }
    case "traverse_graph": {
      const nodes = yield* knowledge.related(tenant, action.from, action.relation, action.depth)
      return result("observed", nodes.length === 0 ? `nothing related to ${action.from}` : nodes.map((n) => `${n.relation}: ${n.name}`).join("; "), { related: nodes.length })
    }
    case "semantic_search": {
      const hits = yield* knowledge.search(tenant, action.query, action.limit)
      return result("observed", `${hits.length} similar: ${hits.slice(0, 5).map((h) => `${h.name} (${h.title}, ${h.company})`).join("; ")}`, { hits: hits.length })
    }
    case "activity_history": {
      const acts = yield* knowledge.activities(tenant, action.contactId, action.limit)
      return result("observed", acts.length === 0 ? `no recorded activity for ${action.contactId}` : acts.map((a) => `${a.at} ${a.kind}: ${a.summary}`).join("; "), { activities: acts.length })
    }
    case "lead_score":
    case "close_probability":
    case "next_best_action": {
      const found = yield* contact(action.contactId)
      if (found._tag === "None") return result("refused", `no contact ${action.contactId}`)
      const k = found.value
      if (action._tag === "lead_score") return result("observed", `${k.name}: lead score ${k.leadScore} (${k.title}, ${k.segment})`, { leadScore: k.leadScore })
      if (action._tag === "close_probability") {
        const p = Math.round(Math.min(0.95, (k.leadScore / 100) * (k.segment === "enterprise" ? 0.6 : 0.8)) * 100) / 100
        return result("observed", `${k.name}: close probability ${p}`, { probability: p })
      }
      const a = Offline.analyse({ outcome: "sent", transcript: null, leadScore: k.leadScore })
      return result("observed", `${k.name}: ${a.nextBestAction}`, { leadStatus: a.leadStatus })
    }
    case "campaign_analytics": {
      const s = yield* knowledge.campaignStats(tenant, action.campaignId)
      const rate = s.targeted === 0 ? 0 : Math.round((s.reached / s.targeted) * 100)
      return result("observed", `${s.campaigns} past campaigns: ${s.targeted} targeted, ${rate}% reached, ${s.converted} converted`, { ...s })
    }
    case "analyse_transcript": {
      const a = Offline.analyse({ outcome: "answered", transcript: action.transcript, leadScore: 50 })
      return result("observed", `sentiment ${a.sentiment}; signals ${a.buyingSignals.join(", ") || "none"}; objections ${a.objections.join(", ") || "none"}`, { sentiment: a.sentiment })
    }
    case "generate_content": {
      const found = yield* contact(action.contactId)
      if (found._tag === "None") return result("refused", `no contact ${action.contactId}`)
      const d = Offline.draft(found.value, action.channel, Offline.brief("preview"))
      return result("observed", `preview (${action.channel}): ${d.body.slice(0, 160)}`, { length: d.body.length })
    }
    case "churn_risk": {
      const list = yield* knowledge.companies(tenant, narrow(c.audience, action.filter), 50)
      const risky = list.filter((x) => x.bestLeadScore < 40).length
      return result("observed", `${risky} of ${list.length} companies at churn risk (no contact above lead score 40)`, { risky, of: list.length })
    }
    case "voice_call":
    case "send_email":
    case "send_sms":
    case "send_whatsapp": {
      const channel = info[action._tag].channel!
      if (channel === "whatsapp" || !c.channels.includes(channel)) {
        return result("refused", `channel ${channel} is not enabled for this campaign (${c.channels.join(", ")})`)
      }
      const filter = narrow(c.audience, action.filter)
      const count = Math.min(yield* contacts.count(tenant, filter), c.targetCount)
      const approvals = Risk.assess({ campaignId: c.campaignId, contacts: count, channels: [channel], maxTouches: 1 })
      return approvals.length > 0
        ? result("needs-confirmation", approvals.map((a) => a.reason).join("; "), { channel, count, approvals })
        : result("proposed", `${channel} to ${count} contacts taken into the plan`, { channel, count })
    }
    case "schedule_meeting":
    case "create_task":
    case "log_activity":
      return yield* write(tenant, c, step, action)
    case "pause_campaign":
    case "adjust_priority":
    case "escalate": {
      const { _tag, ...input } = action
      const reason = action._tag === "adjust_priority" ? `set priority ${action.priority} for ${JSON.stringify(action.filter)}` : action.reason
      return result("needs-confirmation", `${_tag} sent to the campaign; it waits for a person's confirmation`, {
        approvals: [{ approvalId: approvalIdOf(c.campaignId, step.index, _tag), action: _tag, reason, details: { step: step.index, ...input } }]
      })
    }
  }
})
