/**
 * Which channels deliver, chosen by configuration: `CHANNELS=sandbox` (the default: sends
 * nothing, records in the sandbox ledger) or `CHANNELS=live` (real providers for the
 * channels whose settings are present; a channel without settings fails its deliveries as
 * not configured rather than falling back silently).
 *
 * Live settings: `VAPI_API_KEY`, `VAPI_BASE_URL`, `VAPI_PHONE_NUMBER_ID`, `VAPI_ASSISTANT_ID`,
 * `VAPI_MAX_CONCURRENT` (10), `VOICE_MAX_PER_DAY`; `SMTP_HOST`, `SMTP_PORT` (587),
 * `SMTP_SECURE` (false), `SMTP_USER`, `SMTP_PASSWORD`, `SMTP_FROM`, `EMAIL_MAX_PER_DAY` (500);
 * `SMS_BASE_URL`, `SMS_ACCOUNT_SID`, `SMS_AUTH_TOKEN`, `SMS_FROM`, `SMS_MAX_PER_DAY` (300).
 *
 * A provider's adapter (and its SDK) is loaded only when its settings are present: a node
 * that does not call through Vapi or SMTP does not hold their code (the Vapi SDK alone is
 * about 25 MB of a node's memory).
 */
import { Config, type ConfigError, Effect, Layer, Option } from "effect"
import type { AttemptLedger } from "../../storage/AttemptLedger.js"
import type { DeliveryLedger } from "../../storage/DeliveryLedger.js"
import * as Channels from "../Channels.js"
import type { ChannelAdapter } from "./ChannelAdapter.js"
import * as LiveChannels from "./LiveChannels.js"
import * as TwilioSms from "./TwilioSms.js"

const opt = <A>(c: Config.Config<A>) => Config.option(c)

/** The live settings from the environment (a provider's are none when absent). */
export const settings = Config.all({
  vapi: opt(
    Config.all({
      apiKey: Config.redacted("VAPI_API_KEY"),
      baseUrl: Config.option(Config.string("VAPI_BASE_URL")),
      phoneNumberId: Config.string("VAPI_PHONE_NUMBER_ID"),
      assistantId: Config.string("VAPI_ASSISTANT_ID"),
      maxConcurrent: Config.integer("VAPI_MAX_CONCURRENT").pipe(Config.withDefault(10)),
      maxPerDay: Config.option(Config.integer("VOICE_MAX_PER_DAY"))
    })
  ),
  smtp: opt(
    Config.all({
      host: Config.string("SMTP_HOST"),
      port: Config.integer("SMTP_PORT").pipe(Config.withDefault(587)),
      secure: Config.boolean("SMTP_SECURE").pipe(Config.withDefault(false)),
      user: Config.option(Config.string("SMTP_USER")),
      password: Config.option(Config.redacted("SMTP_PASSWORD")),
      from: Config.string("SMTP_FROM"),
      maxPerDay: Config.integer("EMAIL_MAX_PER_DAY").pipe(Config.withDefault(500))
    })
  ),
  sms: opt(
    Config.all({
      baseUrl: Config.string("SMS_BASE_URL"),
      accountSid: Config.string("SMS_ACCOUNT_SID"),
      authToken: Config.redacted("SMS_AUTH_TOKEN"),
      from: Config.string("SMS_FROM"),
      maxPerDay: Config.integer("SMS_MAX_PER_DAY").pipe(Config.withDefault(300))
    })
  )
})

/** The live adapters from the environment (those whose settings are present), each module loaded only then. */
export const adapters: Effect.Effect<ReadonlyArray<ChannelAdapter>, ConfigError.ConfigError> = Effect.gen(function* () {
  const { vapi, smtp, sms } = yield* settings
  const out: Array<ChannelAdapter> = []
  if (Option.isSome(vapi)) {
    const v = vapi.value
    const VapiVoice = yield* Effect.promise(() => import("./VapiVoice.js"))
    out.push(VapiVoice.make({ ...v, baseUrl: Option.getOrUndefined(v.baseUrl), maxPerDay: Option.getOrNull(v.maxPerDay) }))
  }
  if (Option.isSome(smtp)) {
    const s = smtp.value
    const SmtpEmail = yield* Effect.promise(() => import("./SmtpEmail.js"))
    out.push(SmtpEmail.make({ ...s, user: Option.getOrUndefined(s.user), password: Option.getOrUndefined(s.password) }))
  }
  if (Option.isSome(sms)) out.push(TwilioSms.make(sms.value))
  return out
})

/** The channels the environment selects. */
export const layer: Layer.Layer<Channels.Channels, ConfigError.ConfigError, DeliveryLedger | AttemptLedger> = Layer.unwrapEffect(
  Effect.gen(function* () {
    const mode = yield* Config.literal("sandbox", "live")("CHANNELS").pipe(Config.withDefault("sandbox" as const))
    const chosen: Layer.Layer<Channels.Channels, never, DeliveryLedger | AttemptLedger> =
      mode === "sandbox" ? Channels.layerSandbox : LiveChannels.layer(yield* adapters)
    return chosen
  })
)
