/**
 * Consent and opt-outs of each contact. Every grant, revocation, opt-out and opt-in is kept
 * as an append-only event (with its source: a form, an unsubscribe link, a call), and the
 * contact row's flags, which the campaign flow checks before any contact, are updated in the
 * same transaction. An opt-out covers every channel and wins over any per-channel grant.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type { ContactId, TenantId } from "../protocols/Ids.js"
import * as Errors from "./Errors.js"
import type { StorageError } from "./Errors.js"
import * as Tenancy from "./Tenancy.js"

/** A channel a consent applies to; `all` for opt-outs and opt-ins. */
export const ConsentChannel = Schema.Literal("voice", "email", "sms", "all")
export type ConsentChannel = typeof ConsentChannel.Type

/** What happened. `granted`/`revoked` take one channel; `opted-out`/`opted-in` take `all`. */
export const ConsentStatus = Schema.Literal("granted", "revoked", "opted-out", "opted-in")
export type ConsentStatus = typeof ConsentStatus.Type

/** One recorded consent event. */
export const ConsentEvent = Schema.Struct({
  id: Schema.Number,
  contactId: Schema.String,
  channel: ConsentChannel,
  status: ConsentStatus,
  source: Schema.String,
  recordedAt: Schema.DateFromSelf
})
export type ConsentEvent = typeof ConsentEvent.Type

/** A contact's current consent, as the campaign flow reads it. */
export interface ConsentState {
  readonly optedOut: boolean
  readonly voice: boolean
  readonly email: boolean
  readonly sms: boolean
}

/** The consent service. */
export interface ConsentShape {
  /**
   * Records a consent event and applies it to the contact. Fails with `Invalid` for a status
   * and channel that do not go together, and when the contact does not exist.
   */
  readonly record: (
    tenant: TenantId,
    contactId: ContactId,
    channel: ConsentChannel,
    status: ConsentStatus,
    source: string
  ) => Effect.Effect<ConsentState, StorageError>
  /** The contact's current consent, if the contact exists. */
  readonly current: (tenant: TenantId, contactId: ContactId) => Effect.Effect<Option.Option<ConsentState>, StorageError>
  /** Every consent event of the contact, oldest first. */
  readonly history: (tenant: TenantId, contactId: ContactId) => Effect.Effect<ReadonlyArray<ConsentEvent>, StorageError>
}

/** The consent service tag. */
export class Consent extends Context.Tag("nexus/storage/Consent")<Consent, ConsentShape>() {}

const StateRow = Schema.Struct({
  opted_out: Schema.Boolean,
  consent_voice: Schema.Boolean,
  consent_email: Schema.Boolean,
  consent_sms: Schema.Boolean
})
const decodeState = (rows: ReadonlyArray<unknown>) =>
  Effect.map(Schema.decodeUnknown(Schema.Array(StateRow))(rows), (rs) =>
    Option.map(Option.fromNullable(rs[0]), (r): ConsentState => ({
      optedOut: r.opted_out,
      voice: r.consent_voice,
      email: r.consent_email,
      sms: r.consent_sms
    }))
  )

const EventRow = Schema.Struct({
  id: Schema.Number,
  contact_id: Schema.String,
  channel: ConsentChannel,
  status: ConsentStatus,
  source: Schema.String,
  recorded_at: Schema.DateFromSelf
})

/** Builds the service over a SQL client. */
export const make: Effect.Effect<ConsentShape, never, SqlClient.SqlClient> = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const stateColumns = sql.literal("opted_out, consent_voice, consent_email, consent_sms")
  const scoped =
    (operation: string) =>
    <A, E>(effect: Effect.Effect<A, E>, tenant: TenantId): Effect.Effect<A, StorageError> =>
      Tenancy.within(sql, tenant)(effect).pipe(Effect.mapError(Errors.refine(`Consent.${operation}`)))

  const record = Effect.fn("Consent.record")(
    function* (tenant: TenantId, contactId: ContactId, channel: ConsentChannel, status: ConsentStatus, source: string) {
      const optOutKind = status === "opted-out" || status === "opted-in"
      if (optOutKind !== (channel === "all")) {
        return yield* Effect.fail(
          Errors.invalid("Consent.record", `status '${status}' does not apply to channel '${channel}'`)
        )
      }
      const update =
        status === "opted-out" ? sql`opted_out = true`
        : status === "opted-in" ? sql`opted_out = false`
        : sql`${sql(`consent_${channel}`)} = ${status === "granted"}`
      const rows = yield* sql`
        UPDATE contacts SET ${update} WHERE tenant_id = ${tenant} AND id = ${contactId} RETURNING ${stateColumns}`
      const state = yield* decodeState(rows)
      if (Option.isNone(state)) {
        return yield* Effect.fail(Errors.invalid("Consent.record", `contact ${contactId} does not exist`))
      }
      yield* sql`
        INSERT INTO consent_events (tenant_id, contact_id, channel, status, source)
        VALUES (${tenant}, ${contactId}, ${channel}, ${status}, ${source})`
      return state.value
    },
    scoped("record")
  )

  const current = Effect.fn("Consent.current")(function* (tenant: TenantId, contactId: ContactId) {
    return yield* decodeState(yield* sql`SELECT ${stateColumns} FROM contacts WHERE tenant_id = ${tenant} AND id = ${contactId}`)
  }, scoped("current"))

  const history = Effect.fn("Consent.history")(function* (tenant: TenantId, contactId: ContactId) {
    const rows = yield* sql`
      SELECT id::float8 AS id, contact_id, channel, status, source, recorded_at FROM consent_events
      WHERE tenant_id = ${tenant} AND contact_id = ${contactId} ORDER BY id`
    const rs = yield* Schema.decodeUnknown(Schema.Array(EventRow))(rows)
    return rs.map((r): ConsentEvent => ({
      id: r.id, contactId: r.contact_id, channel: r.channel, status: r.status, source: r.source, recordedAt: r.recorded_at
    }))
  }, scoped("history"))

  return { record, current, history }
})

/** The service over the `SqlClient` of a `Database` layer. */
export const layer: Layer.Layer<Consent, never, SqlClient.SqlClient> = Layer.effect(Consent, make)
