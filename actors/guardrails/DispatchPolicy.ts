/**
 * The guardrails checked when a contact's step is about to be dispatched: opt-out and the
 * do-not-contact list (skip), consent per channel (next consented channel, or skip), and
 * quiet hours in the contact's own time zone (defer until the window opens). The settings
 * are a service (from `Config`, or set by tests); `check` is pure.
 */
import { Config, Context, Effect, Layer, Ref } from "effect"
import type { Channel, ContactSnapshot } from "../../protocols/Campaign.js"
import * as QuietHours from "./QuietHours.js"

/** Guardrail settings. */
export interface PolicySettings {
  /** Allowed local hours per channel; null: any time. Default 08:00–21:00 for every channel. */
  readonly quietHours: Readonly<Record<Channel, QuietHours.Window | null>>
  /** Emails and phone numbers never to contact (lower-cased, trimmed). */
  readonly doNotContact: ReadonlySet<string>
}

/** Default settings: 08:00–21:00 local for every channel, an empty list. */
export const defaults: PolicySettings = {
  quietHours: { voice: QuietHours.defaultWindow, sms: QuietHours.defaultWindow, email: QuietHours.defaultWindow },
  doNotContact: new Set()
}

/** No time window on any channel (tests and demos that run around the clock). */
export const anyTime: PolicySettings = { ...defaults, quietHours: { voice: null, sms: null, email: null } }

/** What the guardrails decide for a step. */
export type Verdict =
  | { readonly _tag: "Go"; readonly channel: Channel }
  | { readonly _tag: "Skip"; readonly reason: string }
  | { readonly _tag: "Defer"; readonly channel: Channel; readonly until: number; readonly reason: string }

/** The first channel of `sequence` (from `from` on) the contact can be reached on, with consent. */
export const consentedChannel = (
  contact: ContactSnapshot,
  sequence: ReadonlyArray<Channel>,
  from = 0
): Channel | null =>
  sequence.slice(from).find((c) =>
    c === "email" ? contact.email !== null && contact.consent.email : contact.phone !== null && contact.consent[c]
  ) ?? null

const norm = (s: string | null) => (s ?? "").trim().toLowerCase()

/** Checks a step for `contact` at instant `now` over `sequence` (from index `from`). */
export const check = (
  settings: PolicySettings,
  contact: ContactSnapshot,
  optedOut: boolean,
  sequence: ReadonlyArray<Channel>,
  now: number,
  from = 0
): Verdict => {
  if (optedOut || contact.optedOut) return { _tag: "Skip", reason: "opted-out" }
  if (settings.doNotContact.has(norm(contact.email)) || settings.doNotContact.has(norm(contact.phone))) {
    return { _tag: "Skip", reason: "do-not-contact" }
  }
  const channel = consentedChannel(contact, sequence, from)
  if (channel === null) return { _tag: "Skip", reason: "no-consented-channel" }
  const window = settings.quietHours[channel]
  if (window !== null && !QuietHours.isAllowed(now, contact.timezone, window)) {
    return {
      _tag: "Defer",
      channel,
      until: QuietHours.nextAllowed(now, contact.timezone, window),
      reason: `quiet-hours:${contact.timezone}`
    }
  }
  return { _tag: "Go", channel }
}

/** The policy service: the settings in force. */
export class DispatchPolicy extends Context.Tag("nexus/guardrails/DispatchPolicy")<
  DispatchPolicy,
  { readonly settings: Effect.Effect<PolicySettings> }
>() {}

const windowConfig = (name: string) =>
  Config.string(name).pipe(
    Config.withDefault("08:00-21:00"),
    Config.map((v): QuietHours.Window | null => {
      if (v === "off" || v === "") return null
      const [start = "08:00", end = "21:00"] = v.split("-")
      return { start, end }
    })
  )

/** Settings from the environment: `QUIET_HOURS_VOICE|SMS|EMAIL` (`HH:MM-HH:MM` or `off`), `DO_NOT_CONTACT` (comma list). */
export const config: Config.Config<PolicySettings> = Config.all({
  voice: windowConfig("QUIET_HOURS_VOICE"),
  sms: windowConfig("QUIET_HOURS_SMS"),
  email: windowConfig("QUIET_HOURS_EMAIL"),
  dnc: Config.string("DO_NOT_CONTACT").pipe(Config.withDefault(""))
}).pipe(
  Config.map(({ voice, sms, email, dnc }) => ({
    quietHours: { voice, sms, email },
    doNotContact: new Set(dnc.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0))
  }))
)

/** Fixed settings. */
export const layerWith = (settings: PolicySettings): Layer.Layer<DispatchPolicy> =>
  Layer.succeed(DispatchPolicy, { settings: Effect.succeed(settings) })

/** Settings from the environment. */
export const layer = Layer.effect(DispatchPolicy, Effect.map(config, (s) => ({ settings: Effect.succeed(s) })))

/** Settings held in a `Ref` the caller may change while running (tests, operators). */
export const layerRef = (ref: Ref.Ref<PolicySettings>): Layer.Layer<DispatchPolicy> =>
  Layer.succeed(DispatchPolicy, { settings: Ref.get(ref) })
