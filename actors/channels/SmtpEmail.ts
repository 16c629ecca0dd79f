/**
 * Email over SMTP with nodemailer. The message id is derived from the idempotency key
 * (`<key-hash@sender-domain>`), so even a resend a crash could not rule out is one message
 * to receivers that de-duplicate by Message-ID. A 5xx answer to the recipient is a bounce
 * (an outcome, not an error); 4xx and connection failures are retryable and nothing was
 * sent; a failure after the data was handed over is `sent: unknown`.
 */
import { createHash } from "node:crypto"
import { Effect, Redacted } from "effect"
import nodemailer from "nodemailer"
import type { ChannelAdapter, SendResult } from "./ChannelAdapter.js"
import * as ChannelError from "./ChannelError.js"

/** Settings of the SMTP channel. */
export interface SmtpSettings {
  readonly host: string
  readonly port: number
  /** TLS from the start (port 465); otherwise STARTTLS when offered. Default false. */
  readonly secure?: boolean
  readonly user?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** The sending mailbox (`From`), also the account the daily throttle counts. */
  readonly from: string
  /** Mails per mailbox per day; null for none. */
  readonly maxPerDay?: number | null
  /** Socket timeout in ms. Default 20 s. */
  readonly timeoutMs?: number
  /** Accept self-signed certificates (local test servers). Default false. */
  readonly insecureTls?: boolean
}

/** The Message-ID of a delivery. */
export const messageIdOf = (idempotencyKey: string, from: string): string =>
  `<${createHash("sha256").update(idempotencyKey).digest("hex").slice(0, 32)}@${from.split("@")[1] ?? "localhost"}>`

const convert = (e: unknown): ChannelError.ChannelError | { readonly bounce: string } => {
  const err = e as { code?: string; responseCode?: number; response?: string; command?: string; message?: string }
  const text = err.response ?? err.message ?? String(e)
  if (typeof err.responseCode === "number") {
    if (err.responseCode >= 500 && (err.command === "RCPT TO" || err.command === "DATA")) return { bounce: `${err.responseCode} ${text}` }
    if (err.responseCode >= 500) return ChannelError.make("email", "Rejected", "no", text, { status: err.responseCode, cause: e })
    return ChannelError.make("email", "Unavailable", err.command === "DATA" ? "unknown" : "no", text, { status: err.responseCode, cause: e })
  }
  if (err.code === "ECONNECTION" || err.code === "ECONNREFUSED" || err.code === "EDNS") {
    return ChannelError.make("email", "Unavailable", "no", text, { cause: e })
  }
  if (err.code === "EAUTH") return ChannelError.make("email", "Auth", "no", text, { cause: e })
  if (err.code === "ETIMEDOUT") return ChannelError.make("email", "Timeout", "unknown", text, { cause: e })
  return ChannelError.make("email", "Unknown", "unknown", text, { cause: e })
}

/** The SMTP adapter (one pooled transport). */
export const make = (settings: SmtpSettings): ChannelAdapter => {
  const transport = nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure ?? false,
    ...(settings.user ? { auth: { user: settings.user, pass: settings.password ? Redacted.value(settings.password) : "" } } : {}),
    connectionTimeout: settings.timeoutMs ?? 20_000,
    socketTimeout: settings.timeoutMs ?? 20_000,
    ...(settings.insecureTls ? { tls: { rejectUnauthorized: false } } : {})
  })
  return {
    channel: "email",
    limits: { maxPerDay: settings.maxPerDay ?? null, maxActive: null },
    account: () => `smtp:${settings.from.toLowerCase()}`,
    send: (r) =>
      Effect.tryPromise({
        try: () =>
          transport.sendMail({
            from: settings.from,
            to: r.to,
            subject: r.subject ?? "",
            text: r.body,
            messageId: messageIdOf(r.idempotencyKey, settings.from),
            headers: { "X-Nexus-Campaign": r.campaignId, "X-Nexus-Idempotency-Key": r.idempotencyKey }
          }),
        catch: convert
      }).pipe(
        Effect.map(
          (info): SendResult => ({
            _tag: "Done",
            outcome: info.rejected.length > 0 ? "bounced" : "sent",
            detail: info.rejected.length > 0 ? `rejected: ${String(info.response)}` : `accepted: ${String(info.response)}`,
            providerRef: info.messageId,
            durationSec: 0,
            transcript: null
          })
        ),
        Effect.catchIf(
          (e): e is { readonly bounce: string } => "bounce" in e,
          (e) =>
            Effect.succeed<SendResult>({ _tag: "Done", outcome: "bounced", detail: e.bounce, providerRef: null, durationSec: 0, transcript: null })
        ),
        Effect.mapError((e) => e as ChannelError.ChannelError),
        Effect.withSpan("SmtpEmail.send")
      )
  }
}
