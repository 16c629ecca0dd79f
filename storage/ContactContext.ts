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
 * One assembly costs one round trip on Postgres: every record, memory, graph and
 * stored-vector read, and what the vector store's cached indexes lack, go as one statement
 * (`internal/JsonRows`) in one read-only transaction (`Tenancy.read`), shared with the other
 * assemblies of the tenant started in the same turn of the event loop (up to 16, a row each:
 * `internal/Batched`, `JsonRows.each`). Its text is the same whatever the number of
 * assemblies, so each connection plans it once (a generic plan); the graph and the
 * stored vector are read beside it when they live in Neo4j or Qdrant. Then, after at most
 * one batched embedding call, the two similarity searches: in memory over the indexes the
 * statement caught up, or as the vector store's own searches when it could not (no index
 * cached yet, a long backlog, Qdrant, an assembly inside a caller's transaction). A
 * collection that held no point is not searched and the vector only it would use is not
 * computed; the embedding of a query (a campaign's goal, the same for every contact of the
 * campaign) is kept for the next assemblies.
 */
import { SqlClient, type Statement } from "@effect/sql"
import { Clock, Context, Effect, Layer, Option, type ParseResult } from "effect"
import type { ContactSnapshot } from "../protocols/Campaign.js"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import * as Trace from "../protocols/Trace.js"
import { ContactRepo } from "./ContactRepo.js"
import { Embeddings } from "./Embeddings.js"
import type { Episode } from "./Episode.js"
import { EpisodicMemory } from "./EpisodicMemory.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Batched from "./internal/Batched.js"
import * as JsonRows from "./internal/JsonRows.js"
import type { JsonRead } from "./internal/JsonRows.js"
import { KnowledgeGraph, type Neighbourhood, nodeId } from "./KnowledgeGraph.js"
import { PgGraph } from "./PgGraph.js"
import { type Changes, PgVectorStore, type Searcher } from "./PgVectorStore.js"
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

// How many query embeddings `make` keeps.
const QUERY_EMBEDDINGS = 64
// Most assemblies read in one statement.
const MAX_BATCH = 16

/** Builds the service over the three layers (and the SQL client that records and memory live in). */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const contacts = yield* ContactRepo
  const memory = yield* EpisodicMemory
  const graph = yield* KnowledgeGraph
  const vectors = yield* VectorStore
  const embeddings = yield* Embeddings
  // the embedded backends, when they are the graph and the vector store in use: their reads join the statement
  const pgGraph = Option.getOrUndefined(Option.filter(yield* Effect.serviceOption(PgGraph), (g) => g === graph))
  const pgVectors = Option.getOrUndefined(Option.filter(yield* Effect.serviceOption(PgVectorStore), (v) => v === vectors))
  const absent = <A>(): JsonRead<Option.Option<A>> => ({ json: sql`NULL`, decode: () => Effect.succeed(Option.none()) })
  const nothingRemote = { hood: Option.none<Neighbourhood>(), stored: Option.none<Point>() }

  // Embeddings of recent queries, least recently used first: every contact of a campaign is
  // assembled for the same goal, whose embedding need not be computed (or paid for) again.
  const queryEmbeddings = new Map<string, Float32Array>()
  const remember = (text: string, vector: Float32Array) => {
    queryEmbeddings.delete(text)
    queryEmbeddings.set(text, vector)
    if (queryEmbeddings.size > QUERY_EMBEDDINGS) queryEmbeddings.delete(queryEmbeddings.keys().next().value!)
  }

  // Every read of an assembly that lives in Postgres, as one statement's columns, over the
  // assembly's arguments (`column`: the contact, its graph node, the query, the time).
  const readsOf = (tenant: TenantId, column: (name: string) => Statement.Fragment, own: boolean) => {
    // A transaction of our own writes nothing, so what it reads of the vector store is committed
    // and may catch the shared index up; inside a caller's transaction the searches go as usual.
    // (The same for every assembly of the statement: read once.)
    const changesOf = (collection: string): JsonRead<Option.Option<Changes>, ParseResult.ParseError> => {
      if (pgVectors === undefined || !own) return absent()
      const read = pgVectors.reads.changes(tenant, collection)
      return { json: read.json, decode: (json) => Effect.map(read.decode(json), Option.some) }
    }
    const contactId = column("contact_id")
    return {
      found: contacts.reads.get(tenant, contactId),
      objections: memory.reads.openObjections(tenant, contactId),
      episodes: memory.reads.recall(tenant, { contactId, limit: 12, query: column("query"), asOf: column("as_of") }),
      hood: pgGraph !== undefined ? pgGraph.reads.neighbourhood(tenant, column("me"), { hops: 1, limit: 20 }) : absent<Neighbourhood>(),
      stored: pgVectors !== undefined ? pgVectors.reads.get(tenant, collections.contacts, contactId) : absent<Point>(),
      contactChanges: changesOf(collections.contacts),
      conversationChanges: changesOf(collections.conversations)
    }
  }
  interface Request {
    readonly tenant: TenantId
    readonly contactId: ContactId
    readonly me: string
    readonly query: string
    readonly asOf: Date
    readonly own: boolean
  }
  const refine = Errors.refine("ContactContext.assemble")
  // the assemblies of one turn of the event loop (the content agent's drafts of one pull)
  // read in one statement, per tenant (`Batched`), a row each; each decodes its own row.
  // The vector changes are read when every assembly of the batch runs in a transaction of
  // its own (else the searches go as usual for all of them).
  const readMany = (rs: ReadonlyArray<Request>) => {
    const select = JsonRows.each(
      sql,
      [
        { name: "contact_id", type: "text", values: rs.map((r) => r.contactId) },
        { name: "me", type: "text", values: rs.map((r) => r.me) },
        { name: "query", type: "text", values: rs.map((r) => r.query) },
        { name: "as_of", type: "timestamptz", values: rs.map((r) => r.asOf) }
      ],
      (column) => readsOf(rs[0]!.tenant, column, rs.every((r) => r.own))
    )
    return Tenancy.read(sql, rs[0]!.tenant, { genericPlan: true })(select.statement).pipe(
      Effect.mapError(refine),
      Effect.flatMap((rows) => Effect.forEach(rs, (_, i) => Effect.exit(Effect.mapError(select.decodeAt(rows, i), refine))))
    )
  }
  const readOne = (r: Request) => Effect.flatMap(readMany([r]), (answers) => answers[0]!)
  const readBatched = yield* Batched.make({ key: (r: Request) => r.tenant, run: readMany, single: readOne, maxBatch: MAX_BATCH })

  // one span, without the stack trace `Effect.fn` would capture at every call
  const assemble = Effect.fnUntraced(function* (tenant: TenantId, contactId: ContactId, options: AssembleOptions = {}) {
    const budget = Math.max(0, Math.floor(options.tokenBudget ?? 1000))
    const query = options.query ?? ""
    const asOf = options.asOf ?? new Date(yield* Clock.currentTimeMillis)
    const me = nodeId("contact", contactId)
    const own = Option.isNone(yield* Effect.serviceOption(SqlClient.TransactionConnection))

    // every read that lives in Postgres as one statement in one round trip; the graph and the
    // stored vector beside it when they live in Neo4j or Qdrant
    const local = readBatched({ tenant, contactId, me, query: query.trim(), asOf, own })
    const [read, remote] = pgGraph !== undefined && pgVectors !== undefined
      ? [yield* local, nothingRemote]
      : yield* Effect.all([
        local,
        Effect.all({
          hood: pgGraph !== undefined ? Effect.succeed(Option.none<Neighbourhood>()) : graph.neighbourhood(tenant, me, { hops: 1, limit: 20 }),
          stored: pgVectors !== undefined ? Effect.succeed(Option.none<Point>()) : vectors.get(tenant, collections.contacts, contactId)
        })
      ], { concurrency: 2 })
    if (Option.isNone(read.found)) return Option.none<AssembledContext>()
    const contact = read.found.value
    const { objections, episodes } = read
    const hood = Option.orElse(read.hood, () => remote.hood)
    const stored = Option.orElse(read.stored, () => remote.stored)
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

    // Similar contacts by the stored profile vector, or by embedding the profile now; similar
    // conversations by what the context is about. A collection that held no point when the
    // statement read it is not searched, and a vector no search needs is not computed.
    const searcherOf = (collection: string, changes: Option.Option<Changes>): Effect.Effect<Option.Option<Searcher>, StorageError> =>
      pgVectors !== undefined && Option.isSome(changes)
        ? pgVectors.searcherAt(tenant, collection, changes.value)
        : Effect.succeed(Option.some<Searcher>((vector, options) => vectors.search(tenant, collection, vector, options)))
    const similarContacts = yield* searcherOf(collections.contacts, read.contactChanges)
    const similarConversations = yield* searcherOf(collections.conversations, read.conversationChanges)
    const about = query || episodes[0]?.episode.summary || episodes[0]?.episode.content.slice(0, 500) || profile
    const needProfile = Option.isSome(similarContacts) && Option.isNone(stored)
    const known = Option.isSome(similarConversations) && about === query ? queryEmbeddings.get(about) : undefined
    const needAbout = Option.isSome(similarConversations) && known === undefined
    const texts = [...(needProfile ? [profile] : []), ...(needAbout ? [about] : [])]
    const vs = texts.length > 0 ? yield* embeddings.embed(texts) : []
    if (needAbout && about === query) remember(about, vs[vs.length - 1]!)
    else if (known !== undefined) remember(about, known)
    const profileVector = Option.isSome(stored) ? stored.value.vector : vs[0]!
    const aboutVector = known ?? vs[vs.length - 1]!
    const [similar, conversations] = Option.isNone(similarContacts) && Option.isNone(similarConversations)
      ? [[], []]
      : yield* Effect.all([
        Option.match(similarContacts, {
          onNone: () => Effect.succeed([]),
          onSome: (search) => search(profileVector, { limit: 5, minScore: 0.3, excludeIds: [contactId] })
        }),
        Option.match(similarConversations, {
          onNone: () => Effect.succeed([]),
          onSome: (search) => search(aboutVector, { limit: 5, minScore: 0.2, filter: { mustNot: { contactIds: [contactId] } } })
        })
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
  }, Trace.span("ContactContext.assemble", { captureStackTrace: false }))

  return { assemble } satisfies ContactContextShape
})

/** Context assembly over the repositories and the three knowledge layers. */
export const layer = Layer.effect(ContactContext, make)
