/**
 * Small HTTP plumbing shared by the gateway's routes: JSON and text answers, reading a
 * request body under a size limit, and the failure every route answers with.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Data, Effect } from "effect"

/** An HTTP refusal: status, a stable error code and a readable message. */
export class HttpFailure extends Data.TaggedError("HttpFailure")<{
  readonly status: number
  readonly error: string
  readonly message: string
}> {
  readonly retryable = false
}

/** Writes a JSON response. */
export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

/** Writes a text (or any content-type) response. */
export const sendText = (res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void => {
  if (res.headersSent) return
  res.writeHead(status, { ...headers, "content-type": contentType, "content-length": Buffer.byteLength(body) })
  res.end(body)
}

/** Reads the whole body; fails with 413 past `maxBytes` (and stops reading). */
export const readBody = (req: IncomingMessage, maxBytes: number): Effect.Effect<Uint8Array, HttpFailure> =>
  Effect.async<Uint8Array, HttpFailure>((resume) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > maxBytes) {
      req.resume()
      return resume(Effect.fail(new HttpFailure({ status: 413, error: "too_large", message: `the body exceeds ${maxBytes} bytes` })))
    }
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes && !done) {
        done = true
        req.off("data", onData)
        req.resume()
        resume(Effect.fail(new HttpFailure({ status: 413, error: "too_large", message: `the body exceeds ${maxBytes} bytes` })))
      } else chunks.push(chunk)
    }
    req.on("data", onData)
    req.once("end", () => {
      if (!done) {
        done = true
        resume(Effect.succeed(new Uint8Array(Buffer.concat(chunks))))
      }
    })
    req.once("error", (e) => {
      if (!done) {
        done = true
        resume(Effect.fail(new HttpFailure({ status: 400, error: "bad_request", message: e.message })))
      }
    })
  })
