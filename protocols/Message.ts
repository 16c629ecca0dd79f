/**
 * Message types and their codec. A `MessageType` ties a type name and version to the
 * payload `Schema`; a `Registry` decodes raw bytes into a typed message or a typed
 * `DecodeError`, and encodes envelopes. Everything on the wire goes through here.
 */
import { Either, ParseResult, Schema } from "effect"
import * as Decoder from "./Decoder.js"
import { encoderOf } from "./Encoding.js"
import { Envelope, type EnvelopeEncoded } from "./Envelope.js"
import * as Errors from "./Errors.js"

/** A message type: name, schema version and payload schema. */
export interface MessageType<A = any, I = any> {
  readonly type: string
  readonly version: number
  readonly payload: Schema.Schema<A, I, never>
  readonly description: string
}

/** Defines a message type. */
export const define = <A, I>(
  type: string,
  payload: Schema.Schema<A, I, never>,
  options: { readonly version?: number; readonly description: string }
): MessageType<A, I> => ({ type, version: options.version ?? 1, payload, description: options.description })

/** A decoded message: its envelope and its decoded payload. */
export interface Decoded<A = unknown> {
  readonly envelope: Envelope
  readonly type: string
  readonly payload: A
}

/** Narrows a decoded message to one type. */
export const is =
  <A, I>(def: MessageType<A, I>) =>
  (m: Decoded): m is Decoded<A> =>
    m.type === def.type

/** The payload type of a message type. */
export type PayloadOf<M> = M extends MessageType<infer A, any> ? A : never

/** Default upper bound for one message (the NATS default max_payload is 1 MiB). */
export const DEFAULT_MAX_BYTES = 1024 * 1024

// compiled decoders (`Decoder`): what the schemas decode, without their parser's cost
const decodeEnvelope = Decoder.either(Envelope)
const textDecoder = new TextDecoder("utf-8", { fatal: true })
const textEncoder = new TextEncoder()

const formatIssue = (e: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(e)

/** Decodes and encodes the registered message types. */
export interface Registry {
  readonly types: ReadonlyMap<string, MessageType>
  readonly decode: (bytes: Uint8Array, options?: { readonly maxBytes?: number }) => Either.Either<Decoded, Errors.DecodeError>
  readonly decodeJson: (json: unknown) => Either.Either<Decoded, Errors.DecodeError>
  readonly encode: (envelope: Omit<Envelope, "payload" | "type" | "v">, def: MessageType, payload: unknown) => Uint8Array
  /** The same as `encode`, as the JSON text (to embed in a larger document without re-encoding). */
  readonly encodeJson: (envelope: Omit<Envelope, "payload" | "type" | "v">, def: MessageType, payload: unknown) => string
}

/** Builds a registry over a set of message types (the last definition of a type wins). */
export const registry = (defs: Iterable<MessageType>): Registry => {
  const types = new Map<string, MessageType>()
  const decoders = new Map<string, (u: unknown) => Either.Either<unknown, ParseResult.ParseError>>()
  const encoders = new Map<string, (a: unknown) => unknown>()
  for (const def of defs) {
    types.set(def.type, def)
    decoders.set(def.type, Decoder.either(def.payload) as any)
    encoders.set(def.type, encoderOf(def.payload as Schema.Schema<unknown, unknown>))
  }

  const decodeJson = (json: unknown): Either.Either<Decoded, Errors.DecodeError> => {
    const env = decodeEnvelope(json)
    if (Either.isLeft(env)) {
      return Either.left(new Errors.InvalidEnvelope({ message: formatIssue(env.left) }))
    }
    const envelope = env.right
    const def = types.get(envelope.type)
    if (def === undefined) {
      return Either.left(
        new Errors.UnknownMessageType({ type: envelope.type, message: `no schema is registered for type '${envelope.type}'` })
      )
    }
    if (def.version !== envelope.v) {
      return Either.left(
        new Errors.UnsupportedVersion({
          type: envelope.type,
          version: envelope.v,
          message: `type '${envelope.type}' version ${envelope.v} is not supported (expected ${def.version})`
        })
      )
    }
    const payload = decoders.get(def.type)!(envelope.payload)
    if (Either.isLeft(payload)) {
      return Either.left(new Errors.InvalidPayload({ type: def.type, message: formatIssue(payload.left) }))
    }
    return Either.right({ envelope, type: def.type, payload: payload.right })
  }

  const encodeJson = (envelope: Omit<Envelope, "payload" | "type" | "v">, def: MessageType, payload: unknown) => {
    const encoder = encoders.get(def.type) ?? encoderOf(def.payload as Schema.Schema<unknown, unknown>)
    // `Object.assign`, not `{ ...envelope, type, v, payload }`: V8 (Node 20) adds keys to an
    // object made by a spread on a slow path (about 2 µs a key), and that object stringifies
    // slower too; this way a message's encoding takes a third of the time
    const wire: EnvelopeEncoded = Object.assign({}, envelope, { type: def.type, v: def.version, payload: encoder(payload) })
    return JSON.stringify(wire)
  }
  return {
    types,
    decodeJson,
    decode: (bytes, options) => {
      const limit = options?.maxBytes ?? DEFAULT_MAX_BYTES
      if (bytes.byteLength > limit) {
        return Either.left(
          new Errors.Oversized({ size: bytes.byteLength, limit, message: `message of ${bytes.byteLength} bytes exceeds ${limit}` })
        )
      }
      let json: unknown
      try {
        json = JSON.parse(textDecoder.decode(bytes))
      } catch (e) {
        return Either.left(new Errors.MalformedJson({ message: e instanceof Error ? e.message : String(e) }))
      }
      return decodeJson(json)
    },
    encode: (envelope, def, payload) => textEncoder.encode(encodeJson(envelope, def, payload)),
    encodeJson
  }
}
