/**
 * The planner's actions with effects, through the real runtime on NATS and a real Postgres:
 *
 * - CRM writes (create a task, log an activity) run in their step and are written once,
 *   even when the message that ran them is delivered again (its exact bytes re-published,
 *   as after a crash before the ack, twice at once); the audit log says they were made
 *   through the planner, with the trace id of the campaign's work. The offline model's
 *   steps run on in one message (no hop per step).
 * - Workflow control (pause, escalate, adjust priority) goes to the campaign actor as a
 *   NATS message and waits there for a person: nothing is applied and nothing is engaged
 *   until the approval; an approved pause holds the campaign until resumed; a rejected
 *   escalation cancels it; an approved priority change is applied and reported.
 */
import { expect, layer } from "@effect/vitest"
import type { Msg } from "@nats-io/transport-node"
import { Effect } from "effect"
import { Agents, CrmApp } from "../../../actors/index.js"
import { Deployment } from "../../../nats/index.js"
import { NatsClient } from "../../../nats/NatsClient.js"
import { Address, Campaign, Control, Ids, Planner as PlannerProtocol } from "../../../protocols/index.js"
import { Node, Outbox } from "../../../runtime/index.js"
import { ActionLedger } from "../../../storage/ActionLedger.js"
import { AuditLog } from "../../../storage/AuditLog.js"
import { ContactRepo } from "../../../storage/ContactRepo.js"
import * as DemoData from "../../../storage/DemoData.js"
import { Records } from "../../../storage/Records.js"
import * as Events from "../../fixtures/CampaignEvents.js"
import * as Crm from "../../fixtures/Crm.js"
import * as Runtime from "../../fixtures/Runtime.js"

const tenant = Ids.TenantId.make("acts")
const decoder = new TextDecoder()

const start = (id: string, goal: string, targetCount: number, channels: [Campaign.Channel, ...Array<Campaign.Channel>], audience: Campaign.AudienceFilter = {}) =>
  Crm.publishCommand(tenant, Campaign.StartCampaign, {
    campaignId: Ids.CampaignId.make(id),
    name: id,
    goal,
    audience,
    channels,
    targetCount,
    budget: { maxActions: 10_000, maxCostUsd: 100 }
  })
const approvalsOf = (es: ReadonlyArray<Events.StoredEvent>) => Events.ofType(es, "event.approval-requested").map((e) => e.payload)
const completed = (es: ReadonlyArray<Events.StoredEvent>) => es.some((e) => e.type === "event.campaign-completed")

layer(Crm.layer(), { timeout: 120_000, excludeTestServices: true })("planner actions over NATS and Postgres", (it) => {
  it.scoped("a planner run's task and note are written once, also when its message is delivered twice; audited via the planner", () =>
    Effect.gen(function* () {
      yield* DemoData.load(tenant, 300, 7)
      const { nc, js } = yield* NatsClient
      const { subjects } = yield* Deployment.Deployment
      const campaignId = Ids.CampaignId.make("cmp-once")

      // every message published to the planner's work queue, as it went on the wire
      const wire: Array<Msg> = []
      const sub = nc.subscribe(subjects.work(tenant, Agents.planner.name), { callback: (_e, m) => void wire.push(m) })
      yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))
      yield* Effect.promise(() => nc.flush())

      // the planner alone: its plan and any control request wait in the campaign's mailbox
      const node = yield* Node.start({ registry: CrmApp.registry, actors: [], agents: [Agents.planner], commands: [] })
      yield* Runtime.send(
        CrmApp.registry,
        tenant,
        Address.agent(Agents.planner.name),
        Campaign.PlanRequested,
        {
          campaignId,
          goal: "email qualified leads; create a follow-up task for the team and log a note on the best lead",
          audience: {},
          channels: ["email"],
          targetCount: 10
        },
        Address.actor("campaign", campaignId)
      )
      const events = yield* Events.until("the planner's last step", tenant, campaignId, (es) =>
        Events.ofType(es, "event.planner-step").some((e) => e.payload.step.action === "finish")
      )
      const steps = Events.ofType(events, "event.planner-step").map((e) => e.payload.step as PlannerProtocol.PlanStep)
      expect(steps.map((s) => [s.action, s.status])).toEqual([
        ["query_contacts", "observed"],
        ["create_task", "executed"],
        ["log_activity", "executed"],
        ["send_email", "proposed"],
        ["finish", "finished"]
      ])
      const handledOnce = node.counters.handled
      expect(handledOnce, "the offline model's steps run in one message").toBe(1)
      expect(wire.map((m) => JSON.parse(decoder.decode(m.data)).type)).toEqual([Campaign.PlanRequested.type])

      const records = yield* Records
      const ledger = yield* ActionLedger
      const audit = yield* AuditLog
      const best = (steps[2]!.input as { contactId: string }).contactId
      const rows = Effect.gen(function* () {
        const tasks = yield* records.tasksOf(tenant, campaignId)
        const notes = (yield* records.activitiesOf(tenant, Ids.ContactId.make(best), 50)).filter((a) => a.kind === "note")
        const actions = yield* ledger.list(tenant, `${tenant}/${campaignId}/plan-step/`)
        return { tasks, notes, actions }
      })
      const before = yield* rows
      expect(before.tasks).toHaveLength(1)
      expect(before.tasks[0]).toMatchObject({ campaignId, status: "open", title: expect.stringContaining("Follow up") })
      expect(before.notes).toHaveLength(1)
      expect(before.actions.map((a) => [a.action, a.outcome])).toEqual([
        ["create_task", "executed"],
        ["log_activity", "executed"]
      ])

      // deliver the message that ran the writing steps again, byte for byte, twice at once
      const again = [wire[0]!, wire[0]!]
      yield* Effect.forEach(again, (m) => Effect.promise(() => js.publish(m.subject, m.data, { msgID: Outbox.freshId() })), {
        concurrency: "unbounded",
        discard: true
      })
      yield* Crm.waitFor(
        "the redelivered steps to be handled",
        Effect.sync(() => (node.counters.handled >= handledOnce + again.length ? true : undefined))
      )

      const after = yield* rows
      expect(after.tasks, "the task is written once").toEqual(before.tasks)
      expect(after.notes, "the note is written once").toEqual(before.notes)
      expect(after.actions.map((a) => a.idempotencyKey)).toEqual(before.actions.map((a) => a.idempotencyKey))
      // the re-runs sent what the first run sent, under the same ids: JetStream kept one copy
      const stepsAfter = Events.ofType(yield* Events.of(tenant, campaignId), "event.planner-step")
      expect(stepsAfter).toHaveLength(steps.length)

      // audited as made for the campaign, through the planner, in the trace of the request
      const requested = JSON.parse(decoder.decode(wire[0]!.data))
      const traceId = (requested.trace.traceparent as string).split("-")[1]!
      const taskAudit = yield* audit.ofRow(tenant, "tasks", before.tasks[0]!.id)
      expect(taskAudit.map((h) => [h.op, h.actor, h.viaAgent, h.traceId])).toEqual([["insert", `campaign:${campaignId}`, "planner", traceId]])
      const noteAudit = yield* audit.ofRow(tenant, "activities", before.notes[0]!.id)
      expect(noteAudit.map((h) => [h.op, h.viaAgent, h.traceId])).toEqual([["insert", "planner", traceId]])
      expect((yield* audit.byTrace(tenant, traceId)).map((h) => h.table).sort()).toEqual(["activities", "tasks"])
      expect(after.actions.every((a) => a.traceId === traceId)).toBe(true)
    })
  )

  it.scoped("workflow control waits for approval at the campaign actor: pause, escalate, adjust priority", () =>
    Effect.gen(function* () {
      const node = yield* Node.start(CrmApp.nodeOptions)
      const contacts = yield* ContactRepo
      if ((yield* contacts.count(tenant, {})) === 0) yield* DemoData.load(tenant, 300, 7)

      // pause: asked as soon as the planner takes it; nothing applied, nothing engaged until approved
      const paused = "cmp-pause"
      yield* start(paused, "pause other outreach first, then text education leads", 10, ["sms"], { industries: ["Education"] })
      const planned = yield* Events.until("the plan, waiting for approval", tenant, paused, (es) =>
        es.some((e) => e.type === "event.campaign-planned") && approvalsOf(es).length > 0
      )
      const asked = approvalsOf(planned)
      expect(asked, "one approval request per action, not one more when the plan arrives").toHaveLength(1)
      expect(asked[0]).toMatchObject({ approvalId: `${paused}-step1-pause_campaign`, action: "pause_campaign", details: { requestedBy: "agent:planner", step: 1 } })
      const pauseStep = Events.ofType(planned, "event.planner-step").find((e) => e.payload.step.action === "pause_campaign")!
      expect(pauseStep.payload.step.status).toBe("needs-confirmation")
      yield* Effect.sleep("700 millis")
      const waiting = yield* Events.of(tenant, paused)
      expect(Events.ofType(waiting, "event.campaign-state-changed"), "not paused before approval").toHaveLength(0)
      expect(Events.ofType(waiting, "event.contact-progress"), "nothing engaged before approval").toHaveLength(0)

      yield* Crm.publishCommand(tenant, Control.ApproveAction, { campaignId: Ids.CampaignId.make(paused), approvalId: asked[0]!.approvalId, by: "user:alice" })
      const held = yield* Events.until("the approved pause", tenant, paused, (es) => Events.ofType(es, "event.campaign-state-changed").length > 0)
      expect(Events.ofType(held, "event.campaign-state-changed")[0]!.payload).toMatchObject({
        state: "paused",
        by: "agent:planner (approved by user:alice)"
      })
      expect(Events.ofType(held, "event.approval-decided")[0]!.payload).toMatchObject({ decision: "approved", by: "user:alice" })
      yield* Effect.sleep("500 millis")
      expect(Events.ofType(yield* Events.of(tenant, paused), "event.contact-progress"), "paused: nothing engaged").toHaveLength(0)
      yield* Crm.publishCommand(tenant, Control.ResumeCampaign, { campaignId: Ids.CampaignId.make(paused), by: "user:alice" })
      const done = yield* Events.until("the resumed campaign to complete", tenant, paused, completed, 60_000)
      expect(Events.ofType(done, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(10)

      // escalate: a person's sign-off; refused, the campaign is cancelled before anything is sent
      const escalated = "cmp-escalate"
      yield* start(escalated, "escalate to a manager for sign-off, then email energy leads", 10, ["email"], { industries: ["Energy"] })
      const signOff = approvalsOf(
        yield* Events.until("the escalation", tenant, escalated, (es) => approvalsOf(es).some((a) => a.action === "escalate"))
      ).find((a) => a.action === "escalate")!
      expect(signOff.details).toMatchObject({ to: "sales-manager" })
      yield* Crm.publishCommand(tenant, Control.RejectAction, {
        campaignId: Ids.CampaignId.make(escalated),
        approvalId: signOff.approvalId,
        by: "user:bob",
        reason: "not this quarter"
      })
      const cancelled = yield* Events.until("the refused campaign to complete", tenant, escalated, completed)
      expect(Events.ofType(cancelled, "event.campaign-state-changed")[0]!.payload).toMatchObject({ state: "cancelled", by: "user:bob" })
      expect(Events.ofType(cancelled, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(0)
      expect(Events.ofType(cancelled, "event.contact-progress")).toHaveLength(0)

      // adjust priority: applied once approved, reported with the rule; the campaign then runs
      const prioritised = "cmp-priority"
      yield* start(prioritised, "email hot leads with high priority", 10, ["email"])
      const change = approvalsOf(
        yield* Events.until("the priority change", tenant, prioritised, (es) => approvalsOf(es).some((a) => a.action === "adjust_priority"))
      ).find((a) => a.action === "adjust_priority")!
      expect(change.details).toMatchObject({ priority: "high" })
      yield* Crm.publishCommand(tenant, Control.ApproveAction, { campaignId: Ids.CampaignId.make(prioritised), approvalId: change.approvalId, by: "user:carol" })
      const ran = yield* Events.until("the prioritised campaign to complete", tenant, prioritised, completed, 60_000)
      const edit = Events.ofType(ran, "event.campaign-state-changed")[0]!.payload
      expect(edit).toMatchObject({ state: "edited", by: "agent:planner (approved by user:carol)" })
      expect(JSON.parse(edit.reason)).toMatchObject({ priority: "high" })
      expect(Events.ofType(ran, "event.campaign-completed")[0]!.payload.summary.counts.targeted).toBe(10)
      expect(node.counters.deadLetters).toBe(0)
    })
  )
})
