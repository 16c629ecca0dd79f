/**
 * SMS through a Twilio-shaped REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
 * form-encoded, Basic auth), over `fetch`. The request carries no idempotency key, so the
 * attempt is recorded before sending (by `LiveChannels`); a 4xx answer is a failed delivery
 * (21610: the recipient replied STOP), 429 and 502/503 are retryable with nothing sent, a
 * timeout leaves the attempt uncertain.
 */
import { Effect, Redacted } from "effect"
import type { ChannelAdapter, SendResult } from "./ChannelAdapter.js"
import * as ChannelError from "./ChannelError.js"

/** Settings of the SMS channel. */
export interface SmsSettings {
  /** API root, e.g. the provider's HTTPS endpoint or a local test server. */
  readonly baseUrl: string
  readonly accountSid: string
  readonly authToken: Redacted.Redacted
  /** The sending number (E.164), also the account the daily throttle counts. */
  readonly from: string
  /** Messages per number per day; null for none. */
  readonly maxPerDay?: number | null
  /** Request timeout in ms. Default 15 s. */
  readonly timeoutMs?: number
}

/** The SMS adapter. */
export const make = (settings: SmsSettings): ChannelAdapter => {
  const url = `${settings.baseUrl.replace(/\/$/, "")}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/Messages.json`
  const auth = `Basic ${Buffer.from(`${settings.accountSid}:${Redacted.value(settings.authToken)}`).toString("base64")}`
  return {
    channel: "sms",
    limits: { maxPerDay: settings.maxPerDay ?? null, maxActive: null },
    account: () => `sms:${settings.from}`,
    send: (r) =>
      Effect.tryPromise({
        try: (signal) =>
          fetch(url, {
            method: "POST",
            headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({ To: r.to, From: settings.from, Body: r.body }).toString(),
            signal: AbortSignal.any([signal, AbortSignal.timeout(settings.timeoutMs ?? 15_000)])
          }),
        catch: (e) =>
          (e as { name?: string }).name === "TimeoutError"
            ? ChannelError.make("sms", "Timeout", "unknown", "sms provider did not answer in time", { cause: e })
            : ChannelError.make("sms", "Unavailable", "no", String(e), { cause: e })
      }).pipe(
        Effect.flatMap((res) =>
          Effect.tryPromise({
            try: () => res.json() as Promise<{ sid?: string; status?: string; code?: number; message?: string }>,
            catch: (e) => ChannelError.make("sms", "Unknown", "unknown", `unreadable answer (${res.status})`, { status: res.status, cause: e })
          }).pipe(
            Effect.flatMap((body): Effect.Effect<SendResult, ChannelError.ChannelError> => {
              if (res.ok && typeof body.sid === "string") {
                return Effect.succeed({ _tag: "Done", outcome: "sent", detail: `${body.status ?? "queued"} (${body.sid})`, providerRef: body.sid, durationSec: 0, transcript: null })
              }
              if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 401 && res.status !== 403) {
                const why = body.code === 21610 ? "recipient opted out (21610)" : `${body.code ?? res.status}: ${body.message ?? "rejected"}`
                return Effect.succeed({ _tag: "Done", outcome: "failed", detail: why, providerRef: null, durationSec: 0, transcript: null })
              }
              return Effect.fail(ChannelError.fromStatus("sms", res.status, `sms provider ${res.status}: ${body.message ?? ""}`))
            })
          )
        ),
        Effect.withSpan("TwilioSms.send")
      )
  }
}
