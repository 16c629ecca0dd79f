/**
 * Branded identifiers shared by every layer. Ids are subject tokens, so they are
 * restricted to `[A-Za-z0-9_-]` (no dots, wildcards or spaces) and validated on decode.
 */
import { Schema } from "effect"

/** A subject-safe token: 1..64 characters of `[A-Za-z0-9_-]`. */
export const Token = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/, {
    message: () => "expected 1..64 characters of [A-Za-z0-9_-]"
  })
)

/** Tenant id: present in every subject, envelope and row. */
export const TenantId = Token.pipe(Schema.brand("TenantId"))
export type TenantId = typeof TenantId.Type

/** Campaign id. */
export const CampaignId = Token.pipe(Schema.brand("CampaignId"))
export type CampaignId = typeof CampaignId.Type

/** Contact id. */
export const ContactId = Token.pipe(Schema.brand("ContactId"))
export type ContactId = typeof ContactId.Type

/** Message id: also the JetStream `Nats-Msg-Id` used for de-duplication. */
export const MessageId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_:.\-]{1,128}$/),
  Schema.brand("MessageId")
)
export type MessageId = typeof MessageId.Type
