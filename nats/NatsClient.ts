/**
 * The NATS connection as a scoped service: connect on acquire, drain on release.
 * Exposes the core connection, the JetStream client and manager, and the KV manager.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { NatsConnectError } from "./Errors.js"
import { NatsConfig } from "./NatsConfig.js"
import { coalesceWrites } from "./WriteCoalescing.js"

/** A live NATS connection with its JetStream and KV handles. */
export interface NatsHandle {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly kvm: Kvm
  /** Whether the connection writes once per event-loop turn (`WriteCoalescing`). */
  readonly writesCoalesced: boolean
}

/** The NATS connection service. */
export class NatsClient extends Context.Tag("nexus/NatsClient")<NatsClient, NatsHandle>() {}

/** Connects with the client options the runtime uses everywhere (see PLATFORM-NOTES). */
export const connectWith = (servers: ReadonlyArray<string>, name: string, auth: {
  user?: string | undefined
  pass?: string | undefined
  token?: string | undefined
} = {}): Effect.Effect<NatsHandle, NatsConnectError> =>
  Effect.tryPromise({
    try: async () => {
      const nc = await connect({
        servers: [...servers],
        name,
        // async stack traces cost a large share of client CPU on every request
        noAsyncTraces: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        ...(auth.user ? { user: auth.user, pass: auth.pass } : {}),
        ...(auth.token ? { token: auth.token } : {})
      })
      // one socket write per turn of the event loop, not per microtask (see WriteCoalescing)
      const writesCoalesced = coalesceWrites(nc)
      const js = jetstream(nc, { timeout: 10_000 })
      const jsm = await jetstreamManager(nc, { timeout: 10_000 })
      return { nc, js, jsm, kvm: new Kvm(js), writesCoalesced }
    },
    catch: (cause) =>
      new NatsConnectError({
        servers,
        message: `cannot connect to NATS at ${servers.join(",")}: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

/** Connects from `NatsConfig`; drains the connection when the scope closes. */
export const layer: Layer.Layer<NatsClient, NatsConnectError, NatsConfig> = Layer.scoped(
  NatsClient,
  Effect.gen(function* () {
    const cfg = yield* NatsConfig
    return yield* Effect.acquireRelease(
      connectWith(cfg.servers, cfg.name, {
        user: Option.getOrUndefined(cfg.user),
        pass: Option.map(cfg.password, Redacted.value).pipe(Option.getOrUndefined),
        token: Option.map(cfg.token, Redacted.value).pipe(Option.getOrUndefined)
      }),
      (h) => Effect.promise(() => h.nc.drain().catch(() => h.nc.close()))
    ).pipe(
      Effect.tap((h) =>
        h.writesCoalesced ? Effect.void : Effect.logWarning("this NATS client version cannot coalesce socket writes: every microtask writes (slower, still correct)")
      )
    )
  })
)
