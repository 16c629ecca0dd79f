/**
 * The `nexus` command line: every bad argument gets a clear message (parsed in-process),
 * the executable exits with 2 and prints the usage for one, and `campaign status` of a
 * campaign that has no events says so and exits with 1 (real NATS).
 */
import { spawnSync } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { parseCommand } from "../../bin/Cli.js"
import * as NatsFixture from "../fixtures/Nats.js"

const error = (...argv: Array<string>) => {
  const r = parseCommand(argv, {})
  if (Either.isRight(r)) throw new Error(`accepted: ${argv.join(" ")}`)
  return r.left.message
}

const nexus = (args: Array<string>, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["bin/nexus.js", ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 })

describe("nexus CLI", () => {
  it("explains every bad argument", () => {
    expect(error("launch")).toBe("unknown command 'launch'")
    expect(error("start", "--now")).toContain("takes no arguments")
    expect(error("campaign")).toContain("missing campaign subcommand")
    expect(error("campaign", "explode")).toContain("unknown campaign subcommand 'explode'")
    expect(error("campaign", "start", "--goal", "g", "--target", "5")).toBe("missing --name")
    expect(error("campaign", "start", "--name", "n", "--target", "5")).toBe("missing --goal")
    expect(error("campaign", "start", "--name", "n", "--goal", "g")).toBe("missing --target")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target", "0")).toBe("--target must be a whole number >= 1, got '0'")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target", "2.5")).toContain("--target must be a whole number")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target", "5", "--channels", "voice,fax")).toContain("unknown channel 'fax'")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target", "5", "--max-cost=-1")).toContain("--max-cost must be a number >= 0")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target", "5", "--id", "a b")).toContain("invalid --id 'a b'")
    expect(error("campaign", "start", "--name", "n", "--goal", "g", "--target")).toContain("argument missing")
    expect(error("campaign", "start", "--bogus")).toContain("Unknown option '--bogus'")
    expect(error("campaign", "status")).toBe("missing campaign id")
    expect(error("campaign", "status", "a.b")).toContain("invalid campaign id 'a.b'")
    expect(error("campaign", "status", "c1", "c2")).toBe("unexpected argument 'c2'")
    expect(error("campaign", "pause", "c1", "--tenant", "bad tenant")).toContain("invalid --tenant")
    expect(error("campaign", "tail", "c1", "--from", "zero")).toContain("--from must be a whole number")
    expect(error("token", "--role", "root", "--tenant", "t")).toContain("--role must be viewer, operator or admin")
    expect(error("token")).toBe("missing --tenant")
    expect(error("tenant")).toBe("missing tenant subcommand: budget")
    expect(error("tenant", "budget", "--max-actions", "10")).toBe("a tenant budget needs both --max-actions and --max-cost")
    expect(error("tenant", "budget", "--max-actions", "10", "--max-cost=-1")).toContain("--max-cost must be a number >= 0")
    expect(error("tenant", "budget", "--clear", "--max-cost", "1")).toBe("--clear takes no --max-actions or --max-cost")
  })

  it("parses good command lines", () => {
    expect(parseCommand(["campaign", "start", "--name", "n", "--goal", "g", "--target", "5", "--channels", "email", "--follow"], { NEXUS_TENANT: "acme" })).toEqual(
      Either.right({ _tag: "CampaignStart", tenant: "acme", id: undefined, name: "n", goal: "g", target: 5, channels: ["email"], maxActions: 20, maxCostUsd: 100, follow: true })
    )
    expect(parseCommand(["tenant", "budget", "--max-actions", "500", "--max-cost", "12.5", "--tenant", "t1"], {})).toEqual(
      Either.right({ _tag: "TenantBudget", tenant: "t1", set: { actions: 500, usd: 12.5 } })
    )
    expect(parseCommand(["tenant", "budget", "--clear"], { NEXUS_TENANT: "t2" })).toEqual(Either.right({ _tag: "TenantBudget", tenant: "t2", set: "clear" }))
    expect(parseCommand(["campaign", "tail", "c1", "--from", "7", "--json", "--tenant", "t1"], {})).toEqual(
      Either.right({ _tag: "CampaignTail", tenant: "t1", id: "c1", from: 7, json: true })
    )
  })

  it("exits with 2 and the usage on a bad argument, 1 when the campaign has no events", () => {
    const bad = nexus(["campaign", "pause"])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("nexus: missing campaign id")
    expect(bad.stderr).toContain("usage: nexus <command>")
    const help = nexus(["help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("campaign tail <campaignId>")
    const unknown = nexus(["campaign", "status", "nope", "--tenant", "acme"], { NEXUS_PREFIX: NatsFixture.randomPrefix() })
    expect(unknown.status, unknown.stderr).toBe(1)
    expect(unknown.stderr).toContain("no events for campaign 'nope' of tenant 'acme'")
  }, 60_000)
})
