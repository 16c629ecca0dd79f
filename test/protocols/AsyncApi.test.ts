/**
 * The AsyncAPI document: generated from protocols/ (never by hand), a structurally valid
 * AsyncAPI 3.0 document (required fields, every `$ref` resolves, operations point at
 * channels and at messages of those channels, parameters match addresses), listing every
 * message the runtime registers with a JSON Schema that describes real encoded messages;
 * and the copy kept in docs/asyncapi.json is up to date (`npm run asyncapi`).
 */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { CrmApp } from "../../actors/index.js"
import { Address, AsyncApi, Campaign, Catalog, type Ids } from "../../protocols/index.js"

const doc = AsyncApi.make() as any

const resolve = (ref: string): unknown =>
  ref.replace(/^#\//, "").split("/").reduce<any>((node, key) => (node === undefined ? undefined : node[key.replace(/~1/g, "/").replace(/~0/g, "~")]), doc)

const refsOf = (node: unknown, out: Array<string> = []): Array<string> => {
  if (Array.isArray(node)) node.forEach((n) => refsOf(n, out))
  else if (typeof node === "object" && node !== null) {
    for (const [k, v] of Object.entries(node)) (k === "$ref" && typeof v === "string" ? out.push(v) : refsOf(v, out))
  }
  return out
}

/** A small JSON Schema check, enough for the keywords JSONSchema.make emits. */
const validates = (schema: any, value: unknown): boolean => {
  if (schema.$ref) return validates(resolve(schema.$ref), value)
  if (schema.anyOf) return schema.anyOf.some((s: any) => validates(s, value))
  if (schema.enum && !schema.enum.includes(value)) return false
  switch (schema.type) {
    case "object":
      if (typeof value !== "object" || value === null || Array.isArray(value)) return false
      if ((schema.required ?? []).some((k: string) => !(k in value))) return false
      return Object.entries(schema.properties ?? {}).every(([k, s]) => !(k in value) || validates(s, (value as any)[k]))
    case "array":
      return Array.isArray(value) && (schema.items === undefined || value.every((v) => validates(schema.items, v)))
    case "string":
      return typeof value === "string" && (schema.pattern === undefined || new RegExp(schema.pattern).test(value))
    case "number":
    case "integer":
      return typeof value === "number"
    case "boolean":
      return typeof value === "boolean"
    case "null":
      return value === null
    default:
      return true
  }
}

describe("AsyncAPI document", () => {
  it("is a structurally valid AsyncAPI 3.0 document", () => {
    expect(doc.asyncapi).toBe("3.0.0")
    expect(doc.info.title).toBeTruthy()
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+$/)
    for (const [id, ch] of Object.entries<any>(doc.channels)) {
      expect(typeof ch.address, `channel ${id}`).toBe("string")
      const params = [...ch.address.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort()
      expect(Object.keys(ch.parameters ?? {}).sort(), `parameters of ${id}`).toEqual(params)
      expect(Object.keys(ch.messages).length, `messages of ${id}`).toBeGreaterThan(0)
    }
    for (const [id, op] of Object.entries<any>(doc.operations)) {
      expect(["send", "receive"]).toContain(op.action)
      const channel = resolve(op.channel.$ref) as any
      expect(channel, `channel of ${id}`).toBeDefined()
      for (const m of op.messages) {
        expect(m.$ref.startsWith(`${op.channel.$ref}/messages/`), `${id} sends a message of its channel`).toBe(true)
        expect(resolve(m.$ref)).toBeDefined()
      }
    }
    for (const key of [...Object.keys(doc.components.messages), ...Object.keys(doc.components.schemas)]) {
      expect(key).toMatch(/^[a-zA-Z0-9.\-_]+$/)
    }
    const unresolved = refsOf(doc).filter((r) => resolve(r) === undefined)
    expect(unresolved).toEqual([])
  })

  it("lists every message the runtime registers and every catalogued message", () => {
    const listed = Object.keys(doc.components.messages).sort()
    expect(listed).toEqual(expect.arrayContaining([...CrmApp.registry.types.keys()]))
    expect(listed).toEqual([...new Set(Catalog.all.map((m) => m.type))].sort())
    for (const m of Catalog.all) expect(doc.components.messages[m.type].summary).toBe(m.description)
  })

  it("describes real encoded messages, and refuses wrong ones", () => {
    const bytes = CrmApp.registry.encode(
      { id: "m-1" as Ids.MessageId, tenant: "acme" as Ids.TenantId, from: Address.ext("client"), to: Address.ext("command-router"), correlationId: "m-1", causationId: null, ts: 1, trace: { traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` } },
      Campaign.StartCampaign,
      { campaignId: "c-1" as Ids.CampaignId, name: "n", goal: "g", audience: { segments: ["smb"] }, channels: ["email"], targetCount: 3, budget: { maxActions: 3, maxCostUsd: 1 } }
    )
    const json = JSON.parse(new TextDecoder().decode(bytes))
    const schema = doc.components.messages["campaign.start"].payload
    expect(validates(schema, json)).toBe(true)
    expect(validates(schema, { ...json, tenant: "a.b" })).toBe(false)
    expect(validates(schema, { ...json, payload: { ...json.payload, channels: ["fax"] } })).toBe(false)
    expect(validates(schema, { ...json, type: "campaign.pause" })).toBe(false)
  })

  it("is kept up to date in docs/asyncapi.json (regenerate with `npm run asyncapi`)", () => {
    const kept = JSON.parse(readFileSync(new URL("../../docs/asyncapi.json", import.meta.url), "utf8"))
    expect(kept, "docs/asyncapi.json is stale: run `npm run asyncapi`").toEqual(doc)
  })
})
