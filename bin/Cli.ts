/**
 * The `nexus` command line: parsing and validating arguments into a typed command, with a
 * clear message for every bad argument (unknown command or option, missing or invalid id,
 * bad number, unknown channel or role). Running the commands is `nexus.ts`.
 */
import { parseArgs } from "node:util"
import { Data, Either } from "effect"

/** The usage text. */
export const USAGE = `usage: nexus <command> [options]

  start                         runtime node + gateway in one process (dev: prints a dashboard link)
  worker                        a runtime node (actors, agents, command router)
  gateway                       the WebSocket/HTTP gateway (needs GATEWAY_JWT_SECRET or GATEWAY_JWKS_URL)
  campaign start --name N --goal G --target N [--channels voice,email,sms]
                 [--max-actions N] [--max-cost USD] [--id ID] [--follow]
  campaign status <campaignId>
  campaign pause <campaignId> [--reason R]
  campaign resume <campaignId>
  campaign tail <campaignId> [--from SEQ] [--json]
  tenant budget [--max-actions N --max-cost USD | --clear]
                                show, set or remove the tenant's budget (all its campaigns together)
  token --tenant T [--role viewer|operator|admin] [--sub S] [--ttl SECONDS]
  asyncapi [--out FILE]         print (or write) the AsyncAPI document
  help

  campaign and tenant commands take --tenant T (default NEXUS_TENANT or 'demo') and talk to NATS (NATS_URL).`

/** A bad command line; `message` says what and how to fix it. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** A parsed command. */
export type Command =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Run"; readonly role: "start" | "worker" | "gateway" }
  | {
      readonly _tag: "CampaignStart"
      readonly tenant: string
      readonly id: string | undefined
      readonly name: string
      readonly goal: string
      readonly target: number
      readonly channels: ReadonlyArray<"voice" | "email" | "sms">
      readonly maxActions: number
      readonly maxCostUsd: number
      readonly follow: boolean
    }
  | { readonly _tag: "CampaignStatus"; readonly tenant: string; readonly id: string }
  | { readonly _tag: "TenantBudget"; readonly tenant: string; readonly set: { readonly actions: number; readonly usd: number } | "clear" | null }
  | { readonly _tag: "CampaignPause"; readonly tenant: string; readonly id: string; readonly reason: string }
  | { readonly _tag: "CampaignResume"; readonly tenant: string; readonly id: string }
  | { readonly _tag: "CampaignTail"; readonly tenant: string; readonly id: string; readonly from: number; readonly json: boolean }
  | { readonly _tag: "Token"; readonly tenant: string; readonly role: "viewer" | "operator" | "admin"; readonly sub: string; readonly ttlSec: number }
  | { readonly _tag: "AsyncApi"; readonly out: string | undefined }

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/
const CHANNELS = ["voice", "email", "sms"] as const

const fail = (message: string): never => {
  throw new UsageError({ message })
}

const token = (what: string, value: string | undefined): string => {
  if (value === undefined || value === "") return fail(`missing ${what}`)
  if (!TOKEN.test(value)) return fail(`invalid ${what} '${value}': use 1..64 characters of A-Z a-z 0-9 _ -`)
  return value
}

const integer = (option: string, value: string | undefined, fallback: number | undefined, min = 1): number => {
  if (value === undefined) return fallback ?? fail(`missing --${option}`)
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) return fail(`--${option} must be a whole number >= ${min}, got '${value}'`)
  return n
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>

const parse = (args: ReadonlyArray<string>, options: Options, positionals: number) => {
  try {
    const r = parseArgs({ args: [...args], options: { ...options, tenant: { type: "string" } }, allowPositionals: true, strict: true })
    if (r.positionals.length > positionals) fail(`unexpected argument '${r.positionals[positionals]}'`)
    return r as { values: Record<string, string | boolean | undefined>; positionals: Array<string> }
  } catch (e) {
    if (e instanceof UsageError) throw e
    // node's messages name the option: "Unknown option '--x'", "Option '--target <value>' argument missing"
    return fail((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""))
  }
}

/** Parses `argv` (without `node` and the script). */
export const parseCommand = (argv: ReadonlyArray<string>, env: Record<string, string | undefined> = process.env): Either.Either<Command, UsageError> => {
  try {
    const [command, ...rest] = argv
    const tenantOf = (v: Record<string, unknown>) => token("--tenant", (v.tenant as string | undefined) ?? env.NEXUS_TENANT ?? "demo")
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        return Either.right({ _tag: "Help" })
      case "start":
      case "worker":
      case "gateway":
        if (rest.length > 0) fail(`'nexus ${command}' takes no arguments (configure it with environment variables), got '${rest[0]}'`)
        return Either.right({ _tag: "Run", role: command })
      case "token": {
        const { values } = parse(rest, { role: { type: "string" }, sub: { type: "string" }, ttl: { type: "string" } }, 0)
        const role = (values.role as string | undefined) ?? "operator"
        if (role !== "viewer" && role !== "operator" && role !== "admin") fail(`--role must be viewer, operator or admin, got '${role}'`)
        if (values.tenant === undefined) fail("missing --tenant")
        return Either.right({
          _tag: "Token",
          tenant: tenantOf(values),
          role: role as "viewer",
          sub: (values.sub as string | undefined) ?? "cli",
          ttlSec: integer("ttl", values.ttl as string | undefined, 8 * 3600)
        })
      }
      case "asyncapi": {
        const { values } = parse(rest, { out: { type: "string" } }, 0)
        return Either.right({ _tag: "AsyncApi", out: values.out as string | undefined })
      }
      case "campaign":
        return Either.right(campaign(rest, tenantOf))
      case "tenant": {
        const [sub, ...args] = rest
        if (sub !== "budget") fail(sub === undefined ? "missing tenant subcommand: budget" : `unknown tenant subcommand '${sub}' (use budget)`)
        const { values } = parse(args, { "max-actions": { type: "string" }, "max-cost": { type: "string" }, clear: { type: "boolean" } }, 0)
        const a = values["max-actions"] as string | undefined
        const c = values["max-cost"] as string | undefined
        if (values.clear === true) {
          if (a !== undefined || c !== undefined) fail("--clear takes no --max-actions or --max-cost")
          return Either.right({ _tag: "TenantBudget", tenant: tenantOf(values), set: "clear" })
        }
        if (a === undefined && c === undefined) return Either.right({ _tag: "TenantBudget", tenant: tenantOf(values), set: null })
        if (a === undefined || c === undefined) fail("a tenant budget needs both --max-actions and --max-cost")
        const usd = Number(c)
        if (!Number.isFinite(usd) || usd < 0) fail(`--max-cost must be a number >= 0, got '${c}'`)
        return Either.right({ _tag: "TenantBudget", tenant: tenantOf(values), set: { actions: integer("max-actions", a, undefined), usd } })
      }
      default:
        return fail(`unknown command '${command}'`)
    }
  } catch (e) {
    if (e instanceof UsageError) return Either.left(e)
    throw e
  }
}

const campaign = (args: ReadonlyArray<string>, tenantOf: (v: Record<string, unknown>) => string): Command => {
  const [sub, ...rest] = args
  switch (sub) {
    case "start": {
      const { values } = parse(
        rest,
        {
          name: { type: "string" },
          goal: { type: "string" },
          target: { type: "string" },
          channels: { type: "string" },
          "max-actions": { type: "string" },
          "max-cost": { type: "string" },
          id: { type: "string" },
          follow: { type: "boolean" }
        },
        0
      )
      const name = values.name as string | undefined
      const goal = values.goal as string | undefined
      if (!name) fail("missing --name")
      if (!goal) fail("missing --goal")
      const target = integer("target", values.target as string | undefined, undefined)
      const channels = ((values.channels as string | undefined) ?? "voice,email,sms").split(",").map((c) => c.trim())
      for (const c of channels) if (!(CHANNELS as ReadonlyArray<string>).includes(c)) fail(`unknown channel '${c}' in --channels (use voice, email, sms)`)
      const maxCost = Number((values["max-cost"] as string | undefined) ?? "100")
      if (!Number.isFinite(maxCost) || maxCost < 0) fail(`--max-cost must be a number >= 0, got '${values["max-cost"]}'`)
      return {
        _tag: "CampaignStart",
        tenant: tenantOf(values),
        id: values.id === undefined ? undefined : token("--id", values.id as string),
        name: name!,
        goal: goal!,
        target,
        channels: channels as Array<"voice">,
        maxActions: integer("max-actions", values["max-actions"] as string | undefined, target * 4),
        maxCostUsd: maxCost,
        follow: values.follow === true
      }
    }
    case "status":
    case "resume": {
      const { values, positionals } = parse(rest, {}, 1)
      const id = token("campaign id", positionals[0])
      return sub === "status" ? { _tag: "CampaignStatus", tenant: tenantOf(values), id } : { _tag: "CampaignResume", tenant: tenantOf(values), id }
    }
    case "pause": {
      const { values, positionals } = parse(rest, { reason: { type: "string" } }, 1)
      return { _tag: "CampaignPause", tenant: tenantOf(values), id: token("campaign id", positionals[0]), reason: (values.reason as string | undefined) ?? "paused from the CLI" }
    }
    case "tail": {
      const { values, positionals } = parse(rest, { from: { type: "string" }, json: { type: "boolean" } }, 1)
      return {
        _tag: "CampaignTail",
        tenant: tenantOf(values),
        id: token("campaign id", positionals[0]),
        from: integer("from", values.from as string | undefined, 1),
        json: values.json === true
      }
    }
    case undefined:
      return fail("missing campaign subcommand: start, status, pause, resume or tail")
    default:
      return fail(`unknown campaign subcommand '${sub}' (use start, status, pause, resume or tail)`)
  }
}
