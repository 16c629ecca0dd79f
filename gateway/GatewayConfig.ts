/**
 * Settings of the WebSocket gateway (listen address and the limits that keep its memory
 * bounded), read once from the environment through `Config` and validated when the layer
 * is built.
 */
import { Config, Context, Duration, Effect, Layer, type Option, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"

/** Settings of the gateway. */
export interface GatewaySettings {
  /** Interface to listen on (`GATEWAY_HOST`). Default `127.0.0.1`. */
  readonly host: string
  /** TCP port (`GATEWAY_PORT`). Default 8080; 0 picks a free port (see `Gateway.port`). */
  readonly port: number
  /**
   * Largest client frame accepted (`GATEWAY_MAX_FRAME_BYTES`). Default 64 KiB. Larger frames
   * get a `frame_too_large` error frame; frames over `4 × maxFrameBytes` (at least 1 MiB)
   * are refused by the WebSocket layer itself, which closes with 1009.
   */
  readonly maxFrameBytes: number
  /**
   * Bytes queued towards one client (`ws.bufferedAmount`) above which the client counts as
   * slow and the gateway stops pulling events for it (`GATEWAY_MAX_BUFFERED_BYTES`).
   * Default 1 MiB.
   */
  readonly maxBufferedBytes: number
  /**
   * How long a client may stay slow before it is closed with 4008 "slow consumer"
   * (`GATEWAY_SLOW_CLIENT_TIMEOUT`, e.g. `10 seconds`, `500 millis`). Default 10 s.
   */
  readonly slowClientTimeout: Duration.Duration
  /** Campaign subscriptions one connection may hold (`GATEWAY_MAX_SUBSCRIPTIONS`). Default 16. */
  readonly maxSubscriptions: number
  /**
   * Events pulled ahead from JetStream per subscription (`GATEWAY_PULL_BATCH`). Default 64.
   * With `maxBufferedBytes` it bounds the memory one subscription can hold.
   */
  readonly pullBatch: number
  /**
   * HS256 secret of client JWTs (`GATEWAY_JWT_SECRET`, at least 32 characters). One of it
   * or `jwksUrl` is required: the gateway never serves unauthenticated clients.
   */
  readonly jwtSecret: Option.Option<Redacted.Redacted>
  /** JWKS URL for RS256/ES256 client JWTs (`GATEWAY_JWKS_URL`). Default none. */
  readonly jwksUrl: Option.Option<string>
  /** Required `iss` claim (`GATEWAY_JWT_ISSUER`). Default not checked. */
  readonly jwtIssuer: Option.Option<string>
  /** Required `aud` claim (`GATEWAY_JWT_AUDIENCE`). Default not checked. */
  readonly jwtAudience: Option.Option<string>
  /**
   * Interval of WebSocket pings (`GATEWAY_HEARTBEAT_INTERVAL`). Default 30 s. A client
   * that has not answered the previous ping when the next one is due is cut.
   */
  readonly heartbeatInterval: Duration.Duration
  /**
   * Client frames per second one connection may send (`GATEWAY_MAX_FRAMES_PER_SECOND`,
   * burst of the same size). Default 20. Frames over it get a `rate_limited` error frame;
   * a client that keeps sending at twice the rate for a second is closed with 1008.
   */
  readonly maxFramesPerSecond: number
  /** Largest HTTP request body (`GATEWAY_MAX_BODY_BYTES`). Default 256 KiB. */
  readonly maxBodyBytes: number
  /** Shared secret of Vapi server messages (`GATEWAY_VAPI_SECRET`). Default none: the webhook answers 503. */
  readonly vapiSecret: Option.Option<Redacted.Redacted>
}

/** The gateway settings service. */
export class GatewayConfig extends Context.Tag("nexus/GatewayConfig")<GatewayConfig, GatewaySettings>() {}

const positiveInt = (name: string, fallback: number, description: string) =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 }),
    Config.withDescription(description)
  )

/** Reads the settings from the environment. */
export const config: Config.Config<GatewaySettings> = Config.all({
  host: Config.string("GATEWAY_HOST").pipe(
    Config.withDefault("127.0.0.1"),
    Config.withDescription("interface the gateway listens on")
  ),
  port: Config.integer("GATEWAY_PORT").pipe(
    Config.withDefault(8080),
    Config.validate({ message: "GATEWAY_PORT must be 0..65535", validation: (n) => n >= 0 && n <= 65535 }),
    Config.withDescription("TCP port of the gateway; 0 picks a free port")
  ),
  maxFrameBytes: positiveInt("GATEWAY_MAX_FRAME_BYTES", 64 * 1024, "largest client frame accepted"),
  maxBufferedBytes: positiveInt(
    "GATEWAY_MAX_BUFFERED_BYTES",
    1024 * 1024,
    "bytes queued towards a client before it counts as slow"
  ),
  slowClientTimeout: Config.duration("GATEWAY_SLOW_CLIENT_TIMEOUT").pipe(
    Config.withDefault(Duration.seconds(10)),
    Config.validate({
      message: "GATEWAY_SLOW_CLIENT_TIMEOUT must be positive",
      validation: (d) => Duration.toMillis(d) > 0
    }),
    Config.withDescription("how long a client may stay slow before it is closed with 4008")
  ),
  maxSubscriptions: positiveInt("GATEWAY_MAX_SUBSCRIPTIONS", 16, "campaign subscriptions per connection"),
  pullBatch: positiveInt("GATEWAY_PULL_BATCH", 64, "events pulled ahead from JetStream per subscription"),
  jwtSecret: Config.option(
    Config.redacted("GATEWAY_JWT_SECRET").pipe(
      Config.validate({
        message: "GATEWAY_JWT_SECRET must be at least 32 characters",
        validation: (r) => Redacted.value(r).length >= 32
      }),
      Config.withDescription("HS256 secret of client JWTs")
    )
  ),
  jwksUrl: Config.option(Config.string("GATEWAY_JWKS_URL").pipe(Config.withDescription("JWKS URL of client JWT keys"))),
  jwtIssuer: Config.option(Config.string("GATEWAY_JWT_ISSUER")),
  jwtAudience: Config.option(Config.string("GATEWAY_JWT_AUDIENCE")),
  heartbeatInterval: Config.duration("GATEWAY_HEARTBEAT_INTERVAL").pipe(
    Config.withDefault(Duration.seconds(30)),
    Config.validate({ message: "GATEWAY_HEARTBEAT_INTERVAL must be positive", validation: (d) => Duration.toMillis(d) > 0 })
  ),
  maxFramesPerSecond: positiveInt("GATEWAY_MAX_FRAMES_PER_SECOND", 20, "client frames per second per connection"),
  maxBodyBytes: positiveInt("GATEWAY_MAX_BODY_BYTES", 256 * 1024, "largest HTTP request body"),
  vapiSecret: Config.option(Config.redacted("GATEWAY_VAPI_SECRET"))
})

/** The settings read from the environment. */
export const layer: Layer.Layer<GatewayConfig, ConfigError> = Layer.effect(GatewayConfig, config)

/** Fixed settings (tests, embedded runs), with environment values or defaults for the rest. */
export const layerWith = (settings: Partial<GatewaySettings>): Layer.Layer<GatewayConfig> =>
  Layer.effect(
    GatewayConfig,
    Effect.map(Effect.orDie(config), (base) => ({ ...base, ...settings }))
  )
