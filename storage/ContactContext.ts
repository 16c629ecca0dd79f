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
 * thumb for English with BPE tokenizers.
 */
import { Context, Effect, Layer, Option } from "effect"
import type { ContactSnapshot } from "../protocols/Campaign.js"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import { ContactRepo } from "./ContactRepo.js"
import { Embeddings } from "./Embeddings.js"
import type { Episode } from "./Episode.js"
import { EpisodicMemory } from "./EpisodicMemory.js"
import type { StorageError } from "./Errors.js"
import { KnowledgeGraph, nodeId } from "./KnowledgeGraph.js"
import { collections, VectorStore } from "./VectorStore.js"

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

/** Builds the service over the three layers. */
export const make = Effect.gen(function* () {
  const contacts = yield* ContactRepo
  const memory = yield* EpisodicMemory
  const graph = yield* KnowledgeGraph
  const vectors = yield* VectorStore
  const embeddings = yield* Embeddings

  const assemble = Effect.fn("ContactContext.assemble")(function* (tenant: TenantId, contactId: ContactId, options: AssembleOptions = {}) {
    const found = yield* contacts.get(tenant, contactId)
    if (Option.isNone(found)) return Option.none<AssembledContext>()
    const contact = found.value
    const budget = Math.max(0, Math.floor(options.tokenBudget ?? 1000))
    const profile = profileLine(contact)
    const query = options.query ?? ""

    const [objections, episodes, hood] = yield* Effect.all([
      memory.openObjections(tenant, contactId),
      memory.recall(tenant, { contactId, limit: 12, ...(query ? { query } : {}), ...(options.asOf ? { asOf: options.asOf } : {}) }),
      graph.neighbourhood(tenant, nodeId("contact", contactId), { hops: 1, limit: 20 })
    ])
    const names = new Map(Option.match(hood, { onNone: () => [], onSome: (h) => h.nodes.map((n) => [n.node.id, `${n.node.name} (${n.node.kind})`] as const) }))
    const me = nodeId("contact", contactId)
    const graphLines = Option.match(hood, {
      onNone: () => [],
      onSome: (h) =>
        [...h.edges]
          .filter((e) => e.src === me || e.dst === me)
          .sort((a, b) => b.weight - a.weight)
          .map((e) => (e.src === me ? `${e.type} → ${names.get(e.dst) ?? e.dst}` : `${names.get(e.src) ?? e.src} → ${e.type} → this contact`) + ` (${e.weight.toFixed(2)})`)
    })

    // similar contacts: by the stored profile vector, or by embedding the profile now
    const stored = yield* vectors.get(tenant, collections.contacts, contactId)
    const profileVector = Option.isSome(stored) ? stored.value.vector : (yield* embeddings.embed([profile]))[0]!
    const similar = yield* vectors.search(tenant, collections.contacts, profileVector, { limit: 5, minScore: 0.3, excludeIds: [contactId] })
    const about = query || episodes[0]?.episode.summary || episodes[0]?.episode.content.slice(0, 500) || profile
    const [aboutVector] = yield* embeddings.embed([about])
    const conversations = yield* vectors.search(tenant, collections.conversations, aboutVector!, {
      limit: 5, minScore: 0.2, filter: { mustNot: { contactIds: [contactId] } }
    })

    const fitted = fit(budget, profile, [
      ["objections", objections.map((o) => `${o.topic}: raised ${o.times}×, last ${day(o.lastRaisedAt)}`)],
      ["episodes", episodes.map((r) => episodeLine(r.episode))],
      ["graph", graphLines],
      ["similarContacts", similar.map((m) => `${m.payload.name ?? m.id}, ${m.payload.title ?? "?"} at ${m.payload.company ?? "?"} (${m.score.toFixed(2)})`)],
      ["similarConversations", conversations.map((m) => `${clip(String(m.payload.summary ?? m.id), 160)} (${m.score.toFixed(2)})`)]
    ])
    return Option.some<AssembledContext>({ contact, ...fitted, tokens: estimateTokens(fitted.text), budget })
  })

  return { assemble } satisfies ContactContextShape
})

/** Context assembly over the repositories and the three knowledge layers. */
export const layer = Layer.effect(ContactContext, make)
