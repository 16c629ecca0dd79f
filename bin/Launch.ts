/**
 * How the processes of a deployment are put together from layers: a runtime node
 * (actors, agents, command router), a gateway, or both. Each entry point (`nexus start`,
 * `nexus worker`, `nexus gateway`, `bin/*.ts`) runs one of these under
 * `NodeRuntime.runMain`, which turns SIGTERM and SIGINT into a graceful drain (the scopes
 * close: stop pulling, commit in-flight work, close connections).
 *
 * Every runtime node reports its own counters for the gateways' `/metrics` (see
 * `runtime/Node.ts`, `NEXUS_METRICS_EVERY`). Authentication for local runs: `nexus start`
 * without `GATEWAY_JWT_SECRET` generates a secret for the life of the process and prints a
 * dashboard link with a dev token; `nexus gateway` never does (it refuses to start without
 * a key).
 */
import { randomBytes } from "node:crypto"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, ConfigError, Effect, Either, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import { CrmApp } from "../actors/index.js"
import * as Auth from "../gateway/Auth.js"
import * as Gateway from "../gateway/Gateway.js"
import * as GatewayConfig from "../gateway/GatewayConfig.js"
import { Deployment } from "../nats/index.js"
import { Node } from "../runtime/index.js"
import * as Database from "../storage/Database.js"
import * as Telemetry from "./Telemetry.js"

/** What a process runs. */
export interface Roles {
  readonly runtime: boolean
  readonly gateway: boolean
  /** Generate a JWT secret and print a dev token when none is configured. Default false. */
  readonly devAuth?: boolean
}

/** `LOG_LEVEL`: a level's name or label in any case (`warning`, `Warning`, `WARN`, `info`, `debug`, ...). */
const logLevel = Config.string("LOG_LEVEL").pipe(
  Config.mapOrFail((raw) => {
    const want = raw.trim().toUpperCase()
    const level = LogLevel.allLevels.find((l) => l.label === want || l._tag.toUpperCase() === want)
    return level
      ? Either.right(level)
      : Either.left(ConfigError.InvalidData([], `Expected a log level (${LogLevel.allLevels.map((l) => l._tag).join(", ")}) but received "${raw}"`))
  }),
  Config.withDefault(LogLevel.Info)
)
const logFormat = Config.literal("logfmt", "json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("logfmt" as const))

/** The log setup of every process: structured lines (`LOG_FORMAT` logfmt or json), level from `LOG_LEVEL` (default Info). */
export const logging = Layer.unwrapEffect(
  Effect.map(Effect.orDie(Config.all([logLevel, logFormat])), ([level, format]) =>
    Layer.merge(
      Logger.replace(
        Logger.defaultLogger,
        format === "json" ? Logger.jsonLogger : format === "pretty" ? Logger.prettyLoggerDefault : Logger.logfmtLogger
      ),
      Logger.minimumLogLevel(level)
    )
  )
)

/** A runtime node hosting the CRM's actors and agents (it reports its own metrics), until interrupted. */
export const runtimeNode = Effect.gen(function* () {
  const node = yield* Node.start(CrmApp.nodeOptions)
  const { subjects, serverVersion } = yield* Deployment.Deployment
  yield* Effect.logInfo(
    `runtime node up: ${node.nodeId}, ${subjects.partitions} partitions placed by lease, prefix '${subjects.prefix}', nats-server ${serverVersion}`
  )
  return node
})

/** The services layer of a runtime node, from the environment. */
export const runtimeLayer = CrmApp.services(Database.layer).pipe(Layer.provideMerge(Deployment.layerFromEnv))

/** A secret for this process when none is configured (local runs only). */
export const devSecret = Effect.gen(function* () {
  const secret = yield* Config.option(Config.string("GATEWAY_JWT_SECRET"))
  const jwks = yield* Config.option(Config.string("GATEWAY_JWKS_URL"))
  return Option.isNone(secret) && Option.isNone(jwks) ? Option.some(randomBytes(32).toString("base64url")) : Option.none()
})

/** The gateway layer, from the environment (with a generated secret when given one). */
export const gatewayLayer = (generated: Option.Option<string> = Option.none(), overrides: Partial<GatewayConfig.GatewaySettings> = {}) =>
  Gateway.layer.pipe(
    Layer.provide(
      Option.isSome(generated) || Object.keys(overrides).length > 0
        ? GatewayConfig.layerWith({ ...overrides, ...(Option.isSome(generated) ? { jwtSecret: Option.some(Redacted.make(generated.value)) } : {}) })
        : GatewayConfig.layer
    ),
    Layer.provide(Deployment.layerFromEnv)
  )

/** Prints the dashboard link with a dev token (admin of `NEXUS_DEV_TENANT`, default `demo`). */
export const printDevLink = (gw: Gateway.GatewayService, secret: string) =>
  Effect.gen(function* () {
    const tenant = yield* Effect.orDie(Config.string("NEXUS_DEV_TENANT").pipe(Config.withDefault("demo")))
    const token = yield* Effect.promise(() => Auth.issue(secret, { tenant, role: "admin", sub: "dev" }))
    yield* Effect.logWarning("GATEWAY_JWT_SECRET is not set: generated a secret for this process (dev only)")
    console.log(`\ndashboard (dev token for tenant '${tenant}', admin, 8 h):\n  ${gw.httpUrl}/?token=${token}\n`)
  })

/** Runs a process with the given roles until SIGTERM/SIGINT, then drains. */
export const main = (roles: Roles) => {
  const program = Effect.gen(function* () {
    const generated = roles.gateway && roles.devAuth ? yield* devSecret : Option.none<string>()
    const layers = roles.runtime && roles.gateway
      ? Layer.merge(runtimeLayer, gatewayLayer(generated))
      : roles.runtime
        ? runtimeLayer
        : gatewayLayer(generated)
    // the node's scope must close before the layers' (its drain still needs the connection)
    return yield* Effect.scoped(Effect.gen(function* () {
      if (roles.runtime) yield* runtimeNode
      if (roles.gateway) {
        const gw = yield* Gateway.Gateway
        yield* Effect.logInfo(`gateway listening: ${gw.httpUrl} (WebSocket ${gw.url})`)
        if (Option.isSome(generated)) yield* printDevLink(gw, generated.value)
      }
      return yield* Effect.never
    })).pipe(Effect.provide(layers as Layer.Layer<any, any, never>))
  })
  const service = roles.runtime && roles.gateway ? "nexus" : roles.runtime ? "nexus-worker" : "nexus-gateway"
  NodeRuntime.runMain(
    Effect.scoped(program).pipe(
      Effect.provide(Telemetry.layer({ serviceName: service })),
      Effect.provide(logging)
    ) as Effect.Effect<never, unknown>
  )
}
