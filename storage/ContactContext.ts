/**
 * Context assembly: what the planner and the content agent should know about a contact,
 * from all three layers, fitted to a token budget. Sections, in priority order:
 *
 *   profile · open objections · relevant recent episodes · graph neighbourhood ·
 *   similar contacts · similar conversations
 *
 * Each section after the profile gets a share of the budget; what a section leaves unused
 * goes to the next ones in priority order. Lines that do not fit are dropped (the last one
 * that partly fits is cut). Tokens are estimated as characters / 4, the usual rule of
 * thumb for English with BPE tokenizers. Beside the text, `facts` carries what templates
 * need (open objections, the last interaction, products of interest) as data.
 *
 * One assembly costs a few round trips on Postgres: one transaction for every record,
 * memory, graph and stored-vector read, issued at once so that the pipelining connection
 * sends them together (the graph and the vector outside it when they live in Neo4j or
 * Qdrant), then, after one batched embedding call, the two similarity searches at once
 * (they read the vector store's shared index outside any transaction).
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option } from "effect"
import type { ContactSnapshot } from "../protocols/Campaign.js"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import { ContactRepo } from "./ContactRepo.js"
import { Embeddings } from "./Embeddings.js"
import type { Episode } from "./Episode.js"
import { EpisodicMemory } from "./EpisodicMemory.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import { KnowledgeGraph, type Neighbourhood, nodeId } from "./KnowledgeGraph.js"
import * as Tenancy from "./Tenancy.js"
import { collections, type Point, VectorStore } from "./VectorStore.js"

/** Estimated tokens of a text: ceil(characters / 4). */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4)

/** The sections of an assembled context. */
export type Section = "profile" | "objections" | "episodes" | "graph" | "similarContacts" | "similarConversations"

/** Budget share of each section after the profile (they add up to 1). */
export const shares: Readonly<Record<Exclude<Section, "profile">, number>> = {
  objections: 0.1,
  episodes: 0.4,
  graph: 0.2,
  similarContacts: 0.1,
  similarConversations: 0.2
}

/** The latest interaction the context recalled. */
export interface LastInteraction {
  /** Day it happened (`YYYY-MM-DD`). */
  readonly day: string
  readonly channel: string
  readonly direction: string
  readonly outcome: string | null
  /** Its summary, or the start of its content (at most 160 characters). */
  readonly gist: string
  readonly products: ReadonlyArray<string>
  readonly nextSteps: ReadonlyArray<string>
}

/** What the context says about the contact as data, for templates (a prompt takes `text`). */
export interface ContextFacts {
  /** Topics of objections still open, most recently raised first. */
  readonly openObjections: ReadonlyArray<string>
  /** The most recent of the recalled interactions, if any. */
  readonly lastInteraction: LastInteraction | null
  /** Products the contact showed interest in: named in recalled interactions (newest first), then by graph edges. */
  readonly interests: ReadonlyArray<string>
}

/** An assembled context. */
export interface AssembledContext {
  readonly contact: ContactSnapshot
  /** The lines kept, per section. */
  readonly sections: Readonly<Record<Section, ReadonlyArray<string>>>
  /** Everything kept, as one text for a prompt. */
  readonly text: string
  /** Estimated tokens of `text`; never above the budget. */
  readonly tokens: number
  readonly budget: number
  /** Lines left out for want of budget. */
  readonly omitted: number
  /** The same knowledge as data (not limited by the budget; a few short strings). */
  readonly facts: ContextFacts
}

/** Options of `assemble`. */
export interface AssembleOptions {
  /** Token budget. Default 1000. */
  readonly tokenBudget?: number
  /** What the context is for (e.g. the campaign goal): ranks episodes and finds similar conversations. */
  readonly query?: string
  /** The time episode ages are measured from. Default now. */
  readonly asOf?: Date
}

/** The context assembly service. */
export interface ContactContextShape {
  /** The context of a contact; none if the contact does not exist. */
  readonly assemble: (
    tenant: TenantId,
    contactId: ContactId,
    options?: AssembleOptions
  ) => Effect.Effect<Option.Option<AssembledContext>, StorageError>
}

/** The context assembly service tag. */
export class ContactContext extends Context.Tag("nexus/storage/ContactContext")<ContactContext, ContactContextShape>() {}

const day = (d: Date) => d.toISOString().slice(0, 10)
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`)

const profileLine = (c: ContactSnapshot): string => {
  const channels = (["voice", "email", "sms"] as const).filter((ch) => c.consent[ch]).join(", ") || "none"
  return `${c.name}, ${c.title} at ${c.company} (${c.industry}, ${c.segment}, ${c.region}, ${c.timezone}); ` +
    `lead score ${c.leadScore}; consent: ${channels}${c.optedOut ? "; OPTED OUT" : ""}`
}

const episodeLine = (e: Episode): string => {
  const facts = [
    e.entities.products.length > 0 ? `products: ${e.entities.products.join(", ")}` : "",
    e.entities.nextSteps.length > 0 ? `next: ${e.entities.nextSteps.join(", ")}` : ""
  ].filter((f) => f.length > 0)
  const gist = clip((e.summary ?? e.content).replace(/\s+/g, " "), 160)
  return `${day(e.occurredAt)} ${e.channel} ${e.direction}${e.outcome ? ` (${e.outcome})` : ""}: ${gist}${facts.length ? ` [${facts.join("; ")}]` : ""}`
}

/** Fits sections into a budget (see the module header); exported for tests. */
export const fit = (
  budget: number,
  profile: string,
  sections: ReadonlyArray<readonly [Exclude<Section, "profile">, ReadonlyArray<string>]>
) => {
  const kept: Record<Section, Array<string>> = { profile: [], objections: [], episodes: [], graph: [], similarContacts: [], similarConversations: [] }
  let left = budget
  let omitted = 0
  const titles: Record<Section, string> = {
    profile: "Contact", objections: "Open objections", episodes: "Recent interactions", graph: "Relationships",
    similarContacts: "Similar contacts", similarConversations: "Similar conversations"
  }
  // a line costs its tokens plus one for its newline; a section's first line also pays for its title
  const take = (section: Section, line: string, allowance: number): number => {
    const header = kept[section].length === 0 ? estimateTokens(`${titles[section]}:`) + 1 : 0
    const cost = header + estimateTokens(line) + 1
    if (cost <= allowance) {
      kept[section].push(line)
      return cost
    }
    if (allowance - header >= 8) {
      kept[section].push(clip(line, (allowance - header - 1) * 4))
      return allowance
    }
    return 0
  }
  left -= take("profile", profile, left)
  const base = left
  const pending = sections.map(([name, lines]) => ({ name, lines: [...lines] }))
  // first pass: each section within its share; second pass: leftovers in priority order
  for (const s of pending) {
    let allowance = Math.min(left, Math.floor(base * shares[s.name]))
    while (s.lines.length > 0 && estimateTokens(s.lines[0]!) + 1 + (kept[s.name].length === 0 ? estimateTokens(`${titles[s.name]}:`) + 1 : 0) <= allowance) {
      const used = take(s.name, s.lines.shift()!, allowance)
      allowance -= used
      left -= used
    }
  }
  for (const s of pending) {
    while (s.lines.length > 0 && left > 0) {
      const used = take(s.name, s.lines[0]!, left)
      if (used === 0) break
      s.lines.shift()
      left -= used
    }
    omitted += s.lines.length
  }
  const text = (Object.keys(kept) as Array<Section>)
    .filter((k) => kept[k].length > 0)
    .map((k) => `${titles[k]}:\n${kept[k].join("\n")}`)
    .join("\n")
  return { sections: kept, text, omitted }
}

const factsOf = (
  objections: ReadonlyArray<{ readonly topic: string; readonly lastRaisedAt: Date }>,
  episodes: ReadonlyArray<Episode>,
  interestEdges: ReadonlyArray<string>
): ContextFacts => {
  const latest = [...episodes].sort((a, b) => b.occurredAt.getTime() - a.occurredAt.getTime() || (a.id < b.id ? -1 : 1))
  const last = latest[0]
  return {
    openObjections: [...objections]
      .sort((a, b) => b.lastRaisedAt.getTime() - a.lastRaisedAt.getTime() || a.topic.localeCompare(b.topic))
      .map((o) => o.topic),
    lastInteraction: last === undefined ? null : {
      day: day(last.occurredAt),
      channel: last.channel,
      direction: last.direction,
      outcome: last.outcome,
      gist: clip((last.summary ?? last.content).replace(/\s+/g, " ").trim(), 160),
      products: last.entities.products,
      nextSteps: last.entities.nextSteps
    },
    interests: [...new Set([...latest.flatMap((e) => e.entities.products), ...interestEdges])]
  }
}

/** Builds the service over the three layers (and the SQL client that records and memory live in). */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const contacts = yield* ContactRepo
  const memory = yield* EpisodicMemory
  const graph = yield* KnowledgeGraph
  const vectors = yield* VectorStore
  const embeddings = yield* Embeddings
  const none = Effect.succeed(Option.none())

  const assemble = Effect.fn("ContactContext.assemble")(function* (tenant: TenantId, contactId: ContactId, options: AssembleOptions = {}) {
    const budget = Math.max(0, Math.floor(options.tokenBudget ?? 1000))
    const query = options.query ?? ""
    const me = nodeId("contact", contactId)
    const hoodOf: Effect.Effect<Option.Option<Neighbourhood>, StorageError> = graph.neighbourhood(tenant, me, { hops: 1, limit: 20 })
    const storedOf: Effect.Effect<Option.Option<Point>, StorageError> = vectors.get(tenant, collections.contacts, contactId)
    const inPostgres = { graph: graph.backend === "postgres", vectors: vectors.backend === "postgres" }

    // every read that lives in Postgres in one transaction, issued together (the connection
    // pipelines them: one round trip for all their first queries); the others beside it
    const [local, remote] = yield* Effect.all([
      Tenancy.within(sql, tenant)(Effect.all({
        found: contacts.get(tenant, contactId),
        objections: memory.openObjections(tenant, contactId),
        episodes: memory.recall(tenant, { contactId, limit: 12, ...(query ? { query } : {}), ...(options.asOf ? { asOf: options.asOf } : {}) }),
        hood: inPostgres.graph ? hoodOf : none,
        stored: inPostgres.vectors ? storedOf : none
      }, { concurrency: "unbounded" })).pipe(Effect.mapError(Errors.refine("ContactContext.assemble"))),
      Effect.all({ hood: inPostgres.graph ? none : hoodOf, stored: inPostgres.vectors ? none : storedOf })
    ], { concurrency: 2 })
    if (Option.isNone(local.found)) return Option.none<AssembledContext>()
    const contact = local.found.value
    const { objections, episodes } = local
    const hood = Option.orElse(local.hood, () => remote.hood)
    const stored = Option.orElse(local.stored, () => remote.stored)
    const profile = profileLine(contact)

    const names = new Map(Option.match(hood, { onNone: () => [], onSome: (h) => h.nodes.map((n) => [n.node.id, `${n.node.name} (${n.node.kind})`] as const) }))
    const mine = Option.match(hood, {
      onNone: () => [],
      onSome: (h) => [...h.edges].filter((e) => e.src === me || e.dst === me).sort((a, b) => b.weight - a.weight)
    })
    const graphLines = mine.map((e) =>
      (e.src === me ? `${e.type} → ${names.get(e.dst) ?? e.dst}` : `${names.get(e.src) ?? e.src} → ${e.type} → this contact`) + ` (${e.weight.toFixed(2)})`
    )
    const productNames = new Map(Option.match(hood, { onNone: () => [], onSome: (h) => h.nodes.map((n) => [n.node.id, n.node.name] as const) }))
    const interestEdges = mine.filter((e) => e.src === me && e.type === "INTERESTED_IN").map((e) => productNames.get(e.dst) ?? e.dst)

    // similar contacts: by the stored profile vector, or by embedding the profile now (one embedding call)
    const about = query || episodes[0]?.episode.summary || episodes[0]?.episode.content.slice(0, 500) || profile
    const texts = Option.isSome(stored) ? [about] : [profile, about]
    const vs = yield* embeddings.embed(texts)
    const profileVector = Option.isSome(stored) ? stored.value.vector : vs[0]!
    const aboutVector = vs[vs.length - 1]!
    const [similar, conversations] = yield* Effect.all([
      vectors.search(tenant, collections.contacts, profileVector, { limit: 5, minScore: 0.3, excludeIds: [contactId] }),
      vectors.search(tenant, collections.conversations, aboutVector, { limit: 5, minScore: 0.2, filter: { mustNot: { contactIds: [contactId] } } })
    ], { concurrency: 2 })

    const fitted = fit(budget, profile, [
      ["objections", objections.map((o) => `${o.topic}: raised ${o.times}×, last ${day(o.lastRaisedAt)}`)],
      ["episodes", episodes.map((r) => episodeLine(r.episode))],
      ["graph", graphLines],
      ["similarContacts", similar.map((m) => `${m.payload.name ?? m.id}, ${m.payload.title ?? "?"} at ${m.payload.company ?? "?"} (${m.score.toFixed(2)})`)],
      ["similarConversations", conversations.map((m) => `${clip(String(m.payload.summary ?? m.id), 160)} (${m.score.toFixed(2)})`)]
    ])
    return Option.some<AssembledContext>({
      contact,
      ...fitted,
      tokens: estimateTokens(fitted.text),
      budget,
      facts: factsOf(objections, episodes.map((r) => r.episode), interestEdges)
    })
  })

  return { assemble } satisfies ContactContextShape
})

/** Context assembly over the repositories and the three knowledge layers. */
export const layer = Layer.effect(ContactContext, make)
