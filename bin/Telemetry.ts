/**
 * Telemetry of a process: OpenTelemetry traces exported over OTLP/HTTP (JSON) when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, through
 * `@effect/opentelemetry`; no exporter otherwise (spans stay in-process and cost little).
 * Spans continue the W3C trace context carried in every envelope, so one trace follows a
 * command from the gateway across NATS hops to the events a dashboard receives. The
 * exporter's modules (and the HTTP client under it) are loaded only when it is configured.
 */
import { Config, Effect, Layer, Option } from "effect"

/** Options of the exporter. */
export interface TelemetryOptions {
  /** Service name (`OTEL_SERVICE_NAME` overrides it). */
  readonly serviceName: string
  /** How often spans are sent. Default 2 s. */
  readonly exportInterval?: import("effect").Duration.DurationInput
}

const settings = Config.all({
  endpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT")),
  tracesEndpoint: Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
  serviceName: Config.option(Config.string("OTEL_SERVICE_NAME"))
})

/** The traces URL from the standard OTLP variables, if any. */
export const tracesUrl = (endpoint: Option.Option<string>, traces: Option.Option<string>): Option.Option<string> =>
  Option.orElse(traces, () => Option.map(endpoint, (e) => `${e.replace(/\/+$/, "")}/v1/traces`))

/** The OTLP trace exporter when configured, else nothing. */
export const layer = (options: TelemetryOptions): Layer.Layer<never> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      const cfg = yield* Effect.orDie(settings)
      const url = tracesUrl(cfg.endpoint, cfg.tracesEndpoint)
      if (Option.isNone(url)) return Layer.empty
      const serviceName = Option.getOrElse(cfg.serviceName, () => options.serviceName)
      yield* Effect.logInfo(`exporting traces to ${url.value} as ${serviceName}`)
      const [OtlpTracer, OtlpSerialization, NodeHttpClient] = yield* Effect.promise(() =>
        Promise.all([
          import("@effect/opentelemetry/OtlpTracer"),
          import("@effect/opentelemetry/OtlpSerialization"),
          import("@effect/platform-node/NodeHttpClient")
        ])
      )
      return OtlpTracer.layer({
        url: url.value,
        resource: { serviceName, serviceVersion: "0.1.0" },
        exportInterval: options.exportInterval ?? "2 seconds"
      }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(NodeHttpClient.layerUndici))
    })
  )
