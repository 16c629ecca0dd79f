/**
 * Generates the AsyncAPI 3 document of the NATS interface from the protocol itself: the
 * channels from `Subjects`, the messages from `Catalog`, and each message's JSON Schema
 * (the envelope with its `type`, `v` and `payload` fixed) from its Effect `Schema` through
 * `JSONSchema.make`. Nothing in the document is written by hand; `npm run asyncapi` writes
 * it to `docs/asyncapi.json` and a test keeps that file up to date.
 */
import { JSONSchema, Schema } from "effect"
import * as Catalog from "./Catalog.js"
import { Envelope } from "./Envelope.js"
import type { MessageType } from "./Message.js"

/** Options of the document. */
export interface AsyncApiOptions {
  /** Subject prefix (`NEXUS_PREFIX`). Default `nexus`. */
  readonly prefix?: string
  /** Document version. Default `0.1.0`. */
  readonly version?: string
  /** NATS server host:port shown in `servers`. Default `127.0.0.1:4222`. */
  readonly server?: string
}

type Json = Record<string, unknown>

interface ChannelSpec {
  readonly id: string
  readonly address: string
  readonly title: string
  readonly description: string
  readonly parameters: Record<string, string>
  readonly messages: ReadonlyArray<MessageType>
  /** What the runtime does on the channel: `receive` input, `send` output. */
  readonly action: "send" | "receive"
}

const tenant = "Tenant id: 1..64 characters of [A-Za-z0-9_-]; taken from the JWT at the gateway."

const channels = (p: string): ReadonlyArray<ChannelSpec> => [
  ...Catalog.commands.map((m) => ({
    id: `command.${m.type}`,
    address: `${p}.{tenant}.cmd.${m.type}`,
    title: `Command ${m.type}`,
    description: `${m.description} Publish with JetStream (a \`Nats-Msg-Id\` header makes a retry idempotent); refused commands become dead letters.`,
    parameters: { tenant },
    messages: [m],
    action: "receive" as const
  })),
  {
    id: "campaign.events",
    address: `${p}.{tenant}.evt.campaign.{campaignId}.{event}`,
    title: "Campaign progress events",
    description: `Everything that happens in one campaign, stored in the events stream (replayable from any sequence). Subscribe to \`${p}.<tenant>.evt.campaign.<campaignId>.>\`.`,
    parameters: { tenant, campaignId: "Campaign id.", event: "Event type with dots as dashes, e.g. `event-campaign-progress`." },
    messages: Catalog.events,
    action: "send"
  },
  {
    id: "dead-letters",
    address: `${p}.{tenant}.dlq.{reason}`,
    title: "Dead letters",
    description: "Refused or failed messages with the reason and the original bytes (retry by republishing them).",
    parameters: { tenant, reason: "The error tag, e.g. `InvalidPayload`, `HandlerFailed`." },
    messages: Catalog.deadLetters,
    action: "send"
  },
  {
    id: "inbound.vapi",
    address: `${p}.{tenant}.in.vapi.{callId}.{event}`,
    title: "Inbound Vapi call events",
    description: "Vapi webhook messages, verified and de-duplicated by the gateway, stored in the inbound stream.",
    parameters: { tenant, callId: "Vapi call id.", event: "`status-update` or `end-of-call-report`." },
    messages: Catalog.inbound,
    action: "receive"
  },
  {
    id: "node.metrics",
    address: `${p}._sys.metrics.{node}`,
    title: "Node metrics",
    description: "Each runtime node's counters, every few seconds (core NATS, not stored).",
    parameters: { node: "Node name." },
    messages: Catalog.metrics,
    action: "send"
  },
  {
    id: "internal.mailboxes",
    address: `${p}.{tenant}.mbox.{partition}.{actorType}.{actorId}`,
    title: "Actor mailboxes (internal)",
    description: "Messages between actors and agents. Internal: external systems should not publish here.",
    parameters: { tenant, partition: "Three-digit partition.", actorType: "Actor type.", actorId: "Actor id." },
    messages: Catalog.internal.filter((m) => m.type.startsWith("campaign.") || m.type.startsWith("contact.")),
    action: "receive"
  },
  {
    id: "internal.work",
    address: `${p}.{tenant}.work.{agent}`,
    title: "Agent work queues (internal)",
    description: "Requests to stateless agents. Internal: external systems should not publish here.",
    parameters: { tenant, agent: "Agent name, e.g. `planner`." },
    messages: Catalog.internal.filter((m) => !m.type.startsWith("campaign.") && !m.type.startsWith("contact.")),
    action: "receive"
  }
]

/** The envelope of one message type, with `type`, `v` and `payload` fixed. */
export const envelopeOf = (m: MessageType): Schema.Schema<any, any, never> =>
  Schema.Struct({ ...Envelope.fields, type: Schema.Literal(m.type), v: Schema.Literal(m.version), payload: m.payload })

const rewriteRefs = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(rewriteRefs)
  if (typeof node !== "object" || node === null) return node
  const out: Json = {}
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "$ref" && typeof v === "string" ? v.replace("#/$defs/", "#/components/schemas/") : rewriteRefs(v)
  }
  return out
}

/** The JSON Schema of a message's wire form, with its shared definitions. */
export const jsonSchemaOf = (m: MessageType): { readonly schema: Json; readonly defs: Json } => {
  const { $schema: _s, $defs, ...schema } = JSONSchema.make(envelopeOf(m)) as unknown as Json & { $defs?: Json }
  return { schema: rewriteRefs(schema) as Json, defs: (rewriteRefs($defs ?? {}) as Json) }
}

/** Builds the AsyncAPI 3.0 document. */
export const make = (options: AsyncApiOptions = {}): Json => {
  const prefix = options.prefix ?? "nexus"
  const specs = channels(prefix)
  const messages: Json = {}
  const schemas: Json = {}
  const channelDocs: Json = {}
  const operations: Json = {}
  for (const c of specs) {
    const refs: Json = {}
    for (const m of c.messages) {
      if (!(m.type in messages)) {
        const { schema, defs } = jsonSchemaOf(m)
        Object.assign(schemas, defs)
        messages[m.type] = {
          name: m.type,
          title: m.type,
          summary: m.description,
          contentType: "application/json",
          payload: schema
        }
      }
      refs[m.type] = { $ref: `#/components/messages/${m.type}` }
    }
    channelDocs[c.id] = {
      address: c.address,
      title: c.title,
      description: c.description,
      parameters: Object.fromEntries(Object.entries(c.parameters).map(([k, d]) => [k, { description: d }])),
      messages: refs
    }
    operations[`${c.action}.${c.id}`] = {
      action: c.action,
      channel: { $ref: `#/channels/${c.id}` },
      summary: `${c.action === "receive" ? "The runtime receives" : "The runtime publishes"}: ${c.title}.`,
      messages: c.messages.map((m) => ({ $ref: `#/channels/${c.id}/messages/${m.type}` }))
    }
  }
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Nexus Runtime NATS interface",
      version: options.version ?? "0.1.0",
      description:
        "Commands, events, inbound events, dead letters and metrics of the Nexus Runtime on NATS JetStream. " +
        "Every message is a JSON envelope (id, type, v, tenant, from, to, correlationId, causationId, ts, trace, payload). " +
        "Generated from protocols/ by `npm run asyncapi`; do not edit."
    },
    defaultContentType: "application/json",
    servers: {
      local: { host: options.server ?? "127.0.0.1:4222", protocol: "nats", description: "A NATS server with JetStream." }
    },
    channels: channelDocs,
    operations,
    components: { messages, schemas }
  }
}
