/**
 * Every message type of the protocol, grouped by the channel it travels on. The AsyncAPI
 * document derives from this list; a new message module adds its `all` here (a test checks
 * that every message the CRM registers is catalogued). Grouping follows the type's name:
 * `event.*` are campaign events, `inbound.vapi-*` are stored webhook events, the commands
 * are those external systems publish on `<p>.<tenant>.cmd.<type>`, the rest is internal.
 */
import * as Campaign from "./Campaign.js"
import * as Control from "./Control.js"
import * as DeadLetter from "./DeadLetter.js"
import * as Dispatch from "./Dispatch.js"
import * as Inbound from "./Inbound.js"
import type { MessageType } from "./Message.js"
import * as NodeMetrics from "./NodeMetrics.js"
import * as Planner from "./Planner.js"
import * as Vapi from "./Vapi.js"

const unique = (defs: ReadonlyArray<MessageType>): ReadonlyArray<MessageType> => [...new Map(defs.map((d) => [d.type, d])).values()]

/** Every message type of the protocol modules. */
export const all: ReadonlyArray<MessageType> = unique([
  ...Campaign.all,
  ...Control.all,
  ...Planner.all,
  ...Dispatch.all,
  ...Inbound.all,
  DeadLetter.DeadLettered,
  ...Vapi.all,
  ...NodeMetrics.all
])

/** Commands external systems publish on `<p>.<tenant>.cmd.<type>` (campaign control, inbound and Vapi call events). */
export const commands: ReadonlyArray<MessageType> = unique([Campaign.StartCampaign, ...Control.commands, ...Inbound.all, ...Vapi.all])

/** Progress events on `<p>.<tenant>.evt.campaign.<campaignId>.<event>`. */
export const events: ReadonlyArray<MessageType> = all.filter((m) => m.type.startsWith("event."))

/** Dead-letter records on `<p>.<tenant>.dlq.<reason>`. */
export const deadLetters: ReadonlyArray<MessageType> = [DeadLetter.DeadLettered]

/** Webhook events stored on `<p>.<tenant>.in.<source>.<key>.<event>`. */
export const inbound: ReadonlyArray<MessageType> = [...Vapi.all]

/** Node metrics on `<p>._sys.metrics.<node>`. */
export const metrics: ReadonlyArray<MessageType> = [...NodeMetrics.all]

/** Messages between actors (mailboxes) and to agents (work queues): internal, listed for completeness. */
export const internal: ReadonlyArray<MessageType> = all.filter(
  (m) => ![...commands, ...events, ...deadLetters, ...inbound, ...metrics].some((x) => x.type === m.type)
)
