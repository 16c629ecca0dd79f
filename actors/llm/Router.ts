/**
 * Which model answers which task. Small models classify and extract, medium ones write,
 * large ones plan and analyse (the route table below, data). For a task the router gives a
 * chain: the routed tier first, then cheaper tiers, then the offline model last, so the
 * circuit breaker always has somewhere to fall back to.
 */
import type { ModelSpec, Tier } from "./ModelCatalog.js"

/** What a model call is for. */
export type TaskKind = "classification" | "extraction" | "generation" | "planning" | "analysis"

/** Tier preference per task kind, best fit first. */
export const routes: Readonly<Record<TaskKind, ReadonlyArray<Tier>>> = {
  classification: ["small", "medium", "large"],
  extraction: ["small", "medium", "large"],
  generation: ["medium", "small", "large"],
  planning: ["large", "premium", "medium"],
  analysis: ["large", "premium", "medium"]
}

const rank: Readonly<Record<Tier, number>> = { offline: 0, small: 1, medium: 2, large: 3, premium: 4 }

/** What a call needs of a model (none by default). */
export type Requirement = (model: ModelSpec) => boolean

/**
 * The fallback chain of a task over the available models: the routed tiers in preference
 * order, then any cheaper model, then offline models. Each model once; models failing
 * `needs` are left out.
 */
export const chain = (
  available: ReadonlyArray<ModelSpec>,
  kind: TaskKind,
  needs: Requirement = () => true
): ReadonlyArray<ModelSpec> => {
  const usable = available.filter(needs)
  const out: Array<ModelSpec> = []
  const push = (m: ModelSpec) => {
    if (!out.includes(m)) out.push(m)
  }
  for (const tier of routes[kind]) usable.filter((m) => m.tier === tier).forEach(push)
  const top = out[0] ? rank[out[0].tier] : Infinity
  usable
    .filter((m) => m.tier !== "offline" && rank[m.tier] < top)
    .sort((a, b) => rank[b.tier] - rank[a.tier])
    .forEach(push)
  usable.filter((m) => m.tier === "offline").forEach(push)
  return out
}

/** The model the router picks first for a task (the head of its chain). */
export const pick = (available: ReadonlyArray<ModelSpec>, kind: TaskKind): ModelSpec | undefined => chain(available, kind)[0]
