/**
 * The WebSocket protocol of the gateway: JSON text frames, client → server
 * (`subscribe`, `unsubscribe`, `watch`, `unwatch`, `ping`) and server → client
 * (`subscribed`, `unsubscribed`, `event`, `watching`, `unwatched`, `feed`, `pong`, `error`),
 * as `Schema`s. A campaign subscription streams one campaign's events; a feed streams a
 * tenant-wide view (`campaigns`: every campaign start; `dead-letters`: every dead letter,
 * without its original bytes). Both resume from a stream sequence. and the decoder that turns a raw client frame
 * into a typed frame or a typed refusal. Ids reuse `protocols/Ids`; an event frame carries
 * the envelope's `type`, `id`, `ts` and `payload` unchanged, plus its JetStream sequence.
 */
import { Either, ParseResult, Schema } from "effect"
import { Ids } from "../protocols/index.js"
import { ErrorCode, FrameRejected } from "./Errors.js"

/** A JetStream stream sequence (1-based). */
export const Seq = Schema.Int.pipe(Schema.positive())

/** Subscribe to one campaign's events from `fromSeq` (inclusive); absent = its first event. */
export const Subscribe = Schema.Struct({
  op: Schema.Literal("subscribe"),
  campaignId: Ids.CampaignId,
  fromSeq: Schema.optional(Seq)
})
export type Subscribe = typeof Subscribe.Type

/** Stop receiving one campaign's events. */
export const Unsubscribe = Schema.Struct({ op: Schema.Literal("unsubscribe"), campaignId: Ids.CampaignId })
export type Unsubscribe = typeof Unsubscribe.Type

/** A tenant-wide feed. */
export const Feed = Schema.Literal("campaigns", "dead-letters")
export type Feed = typeof Feed.Type

/** Watch a feed from `fromSeq` (inclusive); absent = its first message. */
export const Watch = Schema.Struct({ op: Schema.Literal("watch"), feed: Feed, fromSeq: Schema.optional(Seq) })
export type Watch = typeof Watch.Type

/** Stop watching a feed. */
export const Unwatch = Schema.Struct({ op: Schema.Literal("unwatch"), feed: Feed })
export type Unwatch = typeof Unwatch.Type

/** Liveness probe; answered with `pong`. */
export const Ping = Schema.Struct({ op: Schema.Literal("ping") })
export type Ping = typeof Ping.Type

/** Any client → server frame. */
export const ClientFrame = Schema.Union(Subscribe, Unsubscribe, Watch, Unwatch, Ping)
export type ClientFrame = typeof ClientFrame.Type

/** The subscription is live; events from `fromSeq` follow. */
export const Subscribed = Schema.Struct({ op: Schema.Literal("subscribed"), campaignId: Ids.CampaignId, fromSeq: Seq })
/** The subscription was stopped at the client's request. */
export const Unsubscribed = Schema.Struct({ op: Schema.Literal("unsubscribed"), campaignId: Ids.CampaignId })
/** One progress event; `seq` is its JetStream stream sequence (resume with `seq + 1`). */
export const Event = Schema.Struct({
  op: Schema.Literal("event"),
  campaignId: Ids.CampaignId,
  seq: Seq,
  type: Schema.String,
  id: Schema.String,
  ts: Schema.Number,
  payload: Schema.Unknown
})
export type Event = typeof Event.Type
/** The feed is live; its messages from `fromSeq` follow. */
export const Watching = Schema.Struct({ op: Schema.Literal("watching"), feed: Feed, fromSeq: Seq })
/** The feed was stopped at the client's request. */
export const Unwatched = Schema.Struct({ op: Schema.Literal("unwatched"), feed: Feed })
/** One message of a feed; `seq` is its stream sequence (resume with `seq + 1`). */
export const FeedMessage = Schema.Struct({
  op: Schema.Literal("feed"),
  feed: Feed,
  seq: Seq,
  type: Schema.String,
  id: Schema.String,
  ts: Schema.Number,
  payload: Schema.Unknown
})
export type FeedMessage = typeof FeedMessage.Type
/** Answer to `ping`. */
export const Pong = Schema.Struct({ op: Schema.Literal("pong") })
/** A refusal; the connection stays open. `campaignId` is set when it concerns one subscription. */
export const ErrorFrame = Schema.Struct({
  op: Schema.Literal("error"),
  code: ErrorCode,
  message: Schema.String,
  campaignId: Schema.optional(Ids.CampaignId),
  feed: Schema.optional(Feed)
})
export type ErrorFrame = typeof ErrorFrame.Type

/** Any server → client frame. */
export const ServerFrame = Schema.Union(Subscribed, Unsubscribed, Event, Watching, Unwatched, FeedMessage, Pong, ErrorFrame)
export type ServerFrame = typeof ServerFrame.Type
/** The JSON form of a server frame. */
export type ServerFrameEncoded = typeof ServerFrame.Encoded

const decoders: Record<string, (u: unknown) => Either.Either<ClientFrame, ParseResult.ParseError>> = {
  subscribe: Schema.decodeUnknownEither(Subscribe, { errors: "first" }),
  unsubscribe: Schema.decodeUnknownEither(Unsubscribe, { errors: "first" }),
  watch: Schema.decodeUnknownEither(Watch, { errors: "first" }),
  unwatch: Schema.decodeUnknownEither(Unwatch, { errors: "first" }),
  ping: Schema.decodeUnknownEither(Ping, { errors: "first" })
}

const MAX_MESSAGE_CHARS = 300
const textDecoder = new TextDecoder("utf-8", { fatal: true })
const reject = (code: ErrorCode, message: string) =>
  Either.left(new FrameRejected({ code, message: message.slice(0, MAX_MESSAGE_CHARS) }))

/** Decodes one raw client frame; every refusal carries the error code to send back. */
export const decodeClient = (
  data: Uint8Array,
  isBinary: boolean,
  maxFrameBytes: number
): Either.Either<ClientFrame, FrameRejected> => {
  if (data.byteLength > maxFrameBytes) {
    return reject("frame_too_large", `frame of ${data.byteLength} bytes exceeds ${maxFrameBytes}`)
  }
  if (isBinary) return reject("bad_frame", "binary frames are not supported; send JSON text frames")
  let json: unknown
  try {
    json = JSON.parse(textDecoder.decode(data))
  } catch (e) {
    return reject("bad_frame", `not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return reject("bad_frame", "a frame must be a JSON object")
  }
  const op = (json as { op?: unknown }).op
  if (typeof op !== "string") return reject("bad_frame", "a frame must have a string 'op'")
  const decode = Object.hasOwn(decoders, op) ? decoders[op] : undefined
  if (decode === undefined) return reject("unknown_op", `unknown op '${op}'`)
  return Either.mapLeft(
    decode(json),
    (e) => new FrameRejected({ code: "bad_request", message: ParseResult.TreeFormatter.formatErrorSync(e).slice(0, MAX_MESSAGE_CHARS) })
  )
}

/** Serialises a server frame. */
export const encodeServer = (frame: ServerFrameEncoded): string => JSON.stringify(frame)

/** An `error` frame from a refusal. */
export const errorFrame = (
  code: ErrorCode,
  message: string,
  campaignId?: string,
  feed?: Feed
): ServerFrameEncoded => ({
  op: "error",
  code,
  message,
  ...(campaignId === undefined ? {} : { campaignId }),
  ...(feed === undefined ? {} : { feed })
})
