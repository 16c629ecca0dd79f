/**
 * The action ledger on the Postgres server and on the embedded PGlite: an action runs once
 * per key (a repeat, sequential or concurrent, returns the recorded outcome and writes
 * nothing); its writes commit with the ledger row or not at all (a failed action leaves no
 * row, so a retry runs it); what it writes is audited as made through the agent, with the
 * trace id of the work.
 */
import { expect, layer } from "@effect/vitest"
import { Data, Effect, Layer, Ref } from "effect"
import { TenantId } from "../../protocols/Ids.js"
import * as ActionLedger from "../../storage/ActionLedger.js"
import * as AuditLog from "../../storage/AuditLog.js"
import * as Database from "../../storage/Database.js"
import * as Records from "../../storage/Records.js"
import * as Tenancy from "../../storage/Tenancy.js"
import * as Postgres from "../fixtures/Postgres.js"

class Boom extends Data.TaggedError("Boom")<{ readonly message: string }> {}

const tenant = TenantId.make("ledger")
const traceId = "4c".repeat(16)
const asPlanner = Tenancy.withActor(Tenancy.agentActor("campaign:cmp-1", "planner", `00-${traceId}-${"1d".repeat(8)}-01`))
const task = (id: string): Records.Task => ({ id, title: `task ${id}`, contactId: null, campaignId: "cmp-1", dueAt: new Date("2026-12-01T09:00:00Z"), status: "open" })

const contract = (name: string, env: Layer.Layer<ActionLedger.ActionLedger | Records.Records | AuditLog.AuditLog, unknown>) =>
  layer(env, { excludeTestServices: true, timeout: 60_000 })(name, (it) => {
    it.effect("runs once per key, commits with its writes, audits them via the agent", () =>
      Effect.gen(function* () {
        const ledger = yield* ActionLedger.ActionLedger
        const records = yield* Records.Records
        const audit = yield* AuditLog.AuditLog
        const runs = yield* Ref.make(0)
        const createTask = (id: string) =>
          Effect.gen(function* () {
            yield* Ref.update(runs, (n) => n + 1)
            yield* records.createTask(tenant, task(id))
            return { outcome: "executed", result: { taskId: id } }
          })
        const key = (k: string) => ({ idempotencyKey: `${tenant}/cmp-1/plan-step/${k}`, agent: "planner", action: "create_task", input: { title: k } })

        const first = yield* ledger.once(tenant, key("1"), createTask("task-1")).pipe(asPlanner)
        expect(first).toEqual({ outcome: "executed", result: { taskId: "task-1" }, duplicate: false })
        const again = yield* ledger.once(tenant, key("1"), createTask("task-1b")).pipe(asPlanner)
        expect(again, "a repeat returns what was recorded").toEqual({ outcome: "executed", result: { taskId: "task-1" }, duplicate: true })
        expect(yield* Ref.get(runs), "the repeat ran nothing").toBe(1)

        // two runs of the same key at once: one runs, the other waits for it and finds its row
        const both = yield* Effect.all([ledger.once(tenant, key("2"), createTask("task-2")), ledger.once(tenant, key("2"), createTask("task-2"))], {
          concurrency: 2
        }).pipe(asPlanner)
        expect(both.map((b) => b.duplicate).sort()).toEqual([false, true])
        expect(yield* Ref.get(runs)).toBe(2)

        // a failed action leaves no ledger row and no write: a retry runs it
        const failing = Effect.gen(function* () {
          yield* records.createTask(tenant, task("task-3"))
          return yield* new Boom({ message: "after the write" })
        })
        expect((yield* Effect.flip(ledger.once(tenant, key("3"), failing)))._tag).toBe("Boom")
        expect(yield* ledger.get(tenant, key("3").idempotencyKey)).toMatchObject({ _tag: "None" })
        expect((yield* ledger.once(tenant, key("3"), createTask("task-3")).pipe(asPlanner)).duplicate).toBe(false)

        expect((yield* records.tasksOf(tenant, "cmp-1")).map((t) => t.id)).toEqual(["task-1", "task-2", "task-3"])
        const recorded = yield* ledger.list(tenant, `${tenant}/cmp-1/plan-step/`)
        expect(recorded.map((r) => [r.action, r.status, r.outcome, r.traceId])).toEqual([
          ["create_task", "done", "executed", traceId],
          ["create_task", "done", "executed", traceId],
          ["create_task", "done", "executed", traceId]
        ])
        const history = yield* audit.ofRow(tenant, "tasks", "task-1")
        expect(history.map((h) => [h.op, h.actor, h.viaAgent, h.traceId])).toEqual([["insert", "campaign:cmp-1", "planner", traceId]])
        expect((yield* audit.byTrace(tenant, traceId)).map((h) => h.rowKey)).toEqual(["task-1", "task-2", "task-3"])
      })
    )
  })

const services = Layer.mergeAll(ActionLedger.layer, Records.layer, AuditLog.layer)
contract("ActionLedger (Postgres)", services.pipe(Layer.provideMerge(Postgres.layerFresh)))
contract("ActionLedger (embedded PGlite)", services.pipe(Layer.provideMerge(Database.layerEmbedded(Database.memory))))
