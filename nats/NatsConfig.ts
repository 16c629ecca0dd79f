/**
 * Connection and topology settings, read once from the environment through `Config`.
 */
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"

/** Settings of the NATS connection and of the JetStream topology. */
export interface NatsSettings {
  /** Server URLs (`NATS_URL`, comma separated). Default `nats://127.0.0.1:4222`. */
  readonly servers: ReadonlyArray<string>
  /** Subject and stream prefix (`NEXUS_PREFIX`). Default `nexus`. */
  readonly prefix: string
  /** Mailbox partitions (`NEXUS_PARTITIONS`). Default 32. Fixed for the life of a deployment. */
  readonly partitions: number
  /** Stream and bucket replicas (`NEXUS_REPLICAS`). Default 1; use 3 on a cluster. */
  readonly replicas: number
  /** Optional credentials (`NATS_USER` / `NATS_PASSWORD`, or `NATS_TOKEN`). */
  readonly user: Option.Option<string>
  readonly password: Option.Option<Redacted.Redacted>
  readonly token: Option.Option<Redacted.Redacted>
  /** Name this client reports to the server (`NEXUS_NODE_NAME`). */
  readonly name: string
}

/** The NATS settings service. */
export class NatsConfig extends Context.Tag("nexus/NatsConfig")<NatsConfig, NatsSettings>() {}

/** Reads the settings from the environment. */
export const config: Config.Config<NatsSettings> = Config.all({
  servers: Config.string("NATS_URL").pipe(
    Config.withDefault("nats://127.0.0.1:4222"),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => x.length > 0)),
    Config.withDescription("NATS server URLs, comma separated")
  ),
  prefix: Config.string("NEXUS_PREFIX").pipe(
    Config.withDefault("nexus"),
    Config.validate({ message: "NEXUS_PREFIX must match [a-z0-9_-]+", validation: (s) => /^[a-z0-9_-]+$/.test(s) })
  ),
  partitions: Config.integer("NEXUS_PARTITIONS").pipe(
    Config.withDefault(32),
    Config.validate({ message: "NEXUS_PARTITIONS must be 1..999", validation: (n) => n >= 1 && n <= 999 })
  ),
  replicas: Config.integer("NEXUS_REPLICAS").pipe(
    Config.withDefault(1),
    Config.validate({ message: "NEXUS_REPLICAS must be 1..5", validation: (n) => n >= 1 && n <= 5 })
  ),
  user: Config.option(Config.string("NATS_USER")),
  password: Config.option(Config.redacted("NATS_PASSWORD")),
  token: Config.option(Config.redacted("NATS_TOKEN")),
  name: Config.string("NEXUS_NODE_NAME").pipe(Config.withDefault(`nexus-${process.pid}`))
})

/** The settings read from the environment. */
export const layer: Layer.Layer<NatsConfig, import("effect/ConfigError").ConfigError> = Layer.effect(NatsConfig, config)

/** Fixed settings (tests, embedded runs), with defaults for what is not given. */
export const layerWith = (settings: Partial<NatsSettings>): Layer.Layer<NatsConfig> =>
  Layer.effect(
    NatsConfig,
    Effect.map(Effect.orDie(config), (base) => ({ ...base, ...settings }))
  )
