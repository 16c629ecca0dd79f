/**
 * How the processes of a deployment are put together from layers: a runtime node
 * (actors, agents, command router), a gateway, or both. Each `bin/*.ts` entry point runs
 * one of these under `NodeRuntime.runMain`, which turns SIGTERM and SIGINT into a graceful
 * drain (the scopes close: stop pulling, commit in-flight work, close connections).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Logger, LogLevel } from "effect"
import { CrmApp } from "../actors/index.js"
import * as Gateway from "../gateway/Gateway.js"
import * as GatewayConfig from "../gateway/GatewayConfig.js"
import { Deployment } from "../nats/index.js"
import { Node } from "../runtime/index.js"
import * as Database from "../storage/Database.js"

/** What a process runs. */
export interface Roles {
  readonly runtime: boolean
  readonly gateway: boolean
}

const logLevel = Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info))

/** The log setup of every process: logfmt lines, level from `LOG_LEVEL` (default Info). */
export const logging = Layer.unwrapEffect(
  Effect.map(Effect.orDie(logLevel), (level) =>
    Layer.merge(Logger.replace(Logger.defaultLogger, Logger.logfmtLogger), Logger.minimumLogLevel(level))
  )
)

/** A runtime node hosting the CRM's actors and agents, until interrupted. */
export const runtimeNode = Effect.gen(function* () {
  const node = yield* Node.start(CrmApp.nodeOptions)
  const { subjects, serverVersion } = yield* Deployment.Deployment
  yield* Effect.logInfo(
    `runtime node up: ${node.partitions.length} of ${subjects.partitions} partitions, prefix '${subjects.prefix}', nats-server ${serverVersion}`
  )
  return node
})

/** The services layer of a runtime node, from the environment. */
export const runtimeLayer = CrmApp.services(Database.layer).pipe(Layer.provideMerge(Deployment.layerFromEnv))

/** The gateway layer, from the environment. */
export const gatewayLayer = Gateway.layer.pipe(Layer.provide(GatewayConfig.layer), Layer.provide(Deployment.layerFromEnv))

/** Runs a process with the given roles until SIGTERM/SIGINT, then drains. */
export const main = (roles: Roles) => {
  const program = Effect.gen(function* () {
    if (roles.runtime) yield* runtimeNode
    if (roles.gateway) {
      const gw = yield* Gateway.Gateway
      yield* Effect.logInfo(`gateway listening: ${gw.httpUrl} (WebSocket ${gw.url})`)
    }
    return yield* Effect.never
  })
  const layers = roles.runtime && roles.gateway
    ? Layer.merge(runtimeLayer, gatewayLayer)
    : roles.runtime
      ? runtimeLayer
      : gatewayLayer
  NodeRuntime.runMain(
    Effect.scoped(program).pipe(Effect.provide(layers as Layer.Layer<any, any, never>), Effect.provide(logging)) as Effect.Effect<never, unknown>
  )
}
