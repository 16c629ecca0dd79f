/**
 * What each kind of WebSocket subscription reads: a campaign's events (the events stream,
 * `<p>.<tenant>.evt.campaign.<id>.>`), the `campaigns` feed (every campaign start of the
 * tenant) and the `dead-letters` feed (the tenant's dead-letter records, without their
 * original bytes, which can be large: the frame says how many there were).
 */
import type { JetStreamClient } from "@nats-io/jetstream"
import type { Envelope, Subjects } from "../../protocols/index.js"
import type * as Frame from "../Frame.js"
import type { Fanout } from "./Fanout.js"
import { eventFrame, type Target } from "./Subscription.js"

const feedFrame = (feed: Frame.Feed) => (seq: number, env: Envelope.Envelope): Frame.ServerFrameEncoded => {
  let payload = env.payload
  if (feed === "dead-letters" && typeof payload === "object" && payload !== null && "dataBase64" in payload) {
    const { dataBase64, ...rest } = payload as { dataBase64: unknown }
    payload = { ...rest, dataBytes: typeof dataBase64 === "string" ? Buffer.byteLength(dataBase64, "base64") : 0 }
  }
  return { op: "feed", feed, seq, type: env.type, id: env.id, ts: env.ts, payload }
}

/** Builds the target factories of one gateway. */
export const make = (
  js: JetStreamClient,
  subjects: Subjects.Subjects,
  pullBatch: number,
  onSent: (env: Envelope.Envelope, clients: number) => void,
  fanout?: Fanout
) => ({
  campaign: (tenant: string, campaignId: string): Target => ({
    js,
    stream: subjects.streams.events,
    filter: subjects.eventsOf(tenant, "campaign", campaignId),
    pullBatch,
    key: campaignId,
    subscribed: (fromSeq) => ({ op: "subscribed", campaignId, fromSeq }),
    frame: eventFrame(campaignId),
    onSent,
    fanout
  }),
  feed: (tenant: string, feed: Frame.Feed): Target => ({
    js,
    stream: feed === "campaigns" ? subjects.streams.events : subjects.streams.deadLetters,
    filter:
      feed === "campaigns"
        ? subjects.event(tenant, "campaign", "*", "event.campaign-started")
        : `${subjects.prefix}.${tenant}.dlq.>`,
    pullBatch,
    key: `feed:${feed}`,
    subscribed: (fromSeq) => ({ op: "watching", feed, fromSeq }),
    frame: feedFrame(feed),
    onSent,
    fanout
  })
})
