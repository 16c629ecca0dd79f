/**
 * The offline provider: answers every task with the task's own deterministic offline
 * answer (`Task.offline`), as JSON text, with a usage estimated from the sizes of the
 * prompt, the output schema (hosted providers bill it as input) and the answer (4
 * characters a token), so cost accounting and the routing benchmark see realistic counts. It never fails and costs nothing (`offline:offline-v1` is priced at 0).
 */
import { Effect } from "effect"
import type { LlmProvider } from "./LlmProvider.js"
import { estimateTokens, tokensOfLength } from "./Usage.js"

/** The offline provider. */
export const provider: LlmProvider = {
  provider: "offline",
  inProcess: true,
  complete: (r) =>
    Effect.sync(() => {
      const text = JSON.stringify(r.offline(r.input))
      return {
        text,
        toolArguments: undefined,
        usage: {
          inputTokens: estimateTokens(r.system) + estimateTokens(r.prompt) + tokensOfLength(r.output.chars),
          cachedInputTokens: 0,
          cacheWriteTokens: 0,
          outputTokens: estimateTokens(text)
        },
        model: r.model.model,
        stopReason: "stop"
      }
    })
}
