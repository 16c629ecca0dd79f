/**
 * How the benchmarks drive campaigns from outside, as an external system or the dashboard
 * would: the start command on the tenant's command subject, and an immediate approval of
 * any approval a plan asks for (the bench stands in for the operator).
 */
import type { Subscription } from "@nats-io/transport-node"
import { CrmApp } from "../../actors/index.js"
import type { NatsHandle } from "../../nats/NatsClient.js"
import { Campaign, Command, Control, Ids, type Subjects } from "../../protocols/index.js"
import { goal } from "./Environment.js"

/** The encoded start command of a bench campaign: everyone, email, `target` contacts. */
export const start = (subjects: Subjects.Subjects, tenant: string, campaignId: string, target: number) =>
  Command.make(subjects, CrmApp.registry, Ids.TenantId.make(tenant), Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(campaignId),
    name: `bench ${campaignId}`,
    goal,
    audience: {},
    channels: ["email"],
    targetCount: target,
    budget: { maxActions: target * 10, maxCostUsd: 1_000_000 }
  })

/** The subject of one event type of a campaign's topic. */
export const eventSubject = (subjects: Subjects.Subjects, tenant: string, campaignId: string, type: string) =>
  subjects.event(tenant, "campaign", campaignId, type)

/** Approves every approval the campaign asks for, at once; counts them in `approved`. */
export const autoApprove = (
  nats: NatsHandle,
  subjects: Subjects.Subjects,
  tenant: string,
  campaignId: string,
  approved: { count: number } = { count: 0 }
): Subscription =>
  nats.nc.subscribe(eventSubject(subjects, tenant, campaignId, Control.ApprovalRequested.type), {
    callback: (_e, m) => {
      approved.count++
      const { approvalId } = m.json<{ payload: { approvalId: string } }>().payload
      const cmd = Command.make(subjects, CrmApp.registry, Ids.TenantId.make(tenant), Control.ApproveAction, {
        campaignId: Ids.CampaignId.make(campaignId),
        approvalId,
        by: "bench"
      })
      nats.js.publish(cmd.subject, cmd.data, { msgID: cmd.id }).catch(() => undefined)
    }
  })
