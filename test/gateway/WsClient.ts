/**
 * Test helpers for the gateway suites: a real `ws` client that records the server's frames
 * (decoded with the protocol schemas) and resolves promises on them, refused-upgrade and
 * JSON GET probes, and a poll for gateway state that has no event of its own.
 */
import { Effect, Schema } from "effect"
import { WebSocket } from "ws"
import { Frame } from "../../gateway/index.js"

const decodeFrame = Schema.decodeUnknownSync(Frame.ServerFrame)

/** A real `ws` client that records every server frame (decoded with the protocol schema). */
export class Client {
  readonly frames: Array<Frame.ServerFrame> = []
  readonly closed: Promise<{ code: number; reason: string }>
  private readonly wakers = new Set<() => void>()
  private cursor = 0

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.frames.push(decodeFrame(JSON.parse(data.toString())))
      for (const wake of this.wakers) wake()
    })
    this.closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  /** Connects; rejects when the upgrade is refused. */
  static open(url: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      const client = new Client(ws)
      ws.once("open", () => resolve(client))
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
      ws.once("error", reject)
    })
  }

  /** Sends a frame: strings as they are, anything else as JSON. */
  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame))
  }

  /** Resolves with `check`'s first non-undefined answer, re-evaluated on every frame. */
  until<T>(what: string, check: (frames: ReadonlyArray<Frame.ServerFrame>) => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const answer = check(this.frames)
        if (answer === undefined) return
        this.wakers.delete(attempt)
        clearTimeout(timer)
        resolve(answer)
      }
      const timer = setTimeout(() => {
        this.wakers.delete(attempt)
        reject(new Error(`timed out waiting for ${what}; frames so far: ${JSON.stringify(this.frames.slice(-5))}`))
      }, timeoutMs)
      this.wakers.add(attempt)
      attempt()
    })
  }

  /** The next frame (after the previous `next`) with this `op`. */
  next<Op extends Frame.ServerFrame["op"]>(op: Op): Promise<Extract<Frame.ServerFrame, { op: Op }>> {
    return this.until(`a '${op}' frame`, (frames) => {
      for (let i = this.cursor; i < frames.length; i++) {
        if (frames[i]!.op === op) {
          this.cursor = i + 1
          return frames[i] as Extract<Frame.ServerFrame, { op: Op }>
        }
      }
      return undefined
    })
  }

  /** The events of one campaign received so far. */
  events(campaignId: string): Array<Frame.Event> {
    return this.frames.filter((f): f is Frame.Event => f.op === "event" && f.campaignId === campaignId)
  }

  /** Waits until `count` events of the campaign have arrived. */
  eventsUntil(campaignId: string, count: number): Promise<Array<Frame.Event>> {
    return this.until(`${count} events of ${campaignId}`, () => {
      const events = this.events(campaignId)
      return events.length >= count ? events : undefined
    })
  }

  /** Closes (cut after 1 s if the handshake does not complete). */
  close(): Promise<unknown> {
    if (this.ws.readyState === WebSocket.CLOSED) return this.closed
    this.ws.close()
    const cut = setTimeout(() => this.ws.terminate(), 1000)
    return this.closed.finally(() => clearTimeout(cut))
  }
}

/** Opens a client; closes it when the test's scope closes. */
export const connect = (url: string) =>
  Effect.acquireRelease(Effect.promise(() => Client.open(url)), (c) => Effect.promise(() => c.close()))

/** Tries an upgrade that must be refused; returns the HTTP status and JSON body. */
export const refusedUpgrade = (url: string) =>
  Effect.promise(
    () =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const ws = new WebSocket(url)
        ws.once("open", () => reject(new Error(`upgrade to ${url} was accepted`)))
        ws.once("error", () => {})
        ws.once("unexpected-response", (_req, res) => {
          let text = ""
          res.on("data", (chunk: Buffer) => (text += chunk.toString()))
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
        })
      })
  )

/** GETs a URL; returns the status and the JSON body. */
export const getJson = (url: string) =>
  Effect.promise(async () => {
    const res = await fetch(url)
    return { status: res.status, body: (await res.json()) as unknown }
  })

/** Polls a condition of the gateway's own state (it has no event for it) until true. */
export const waitUntil = (what: string, cond: () => boolean, timeoutMs = 10_000) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve, reject) => {
        const started = Date.now()
        const tick = setInterval(() => {
          if (cond()) {
            clearInterval(tick)
            resolve()
          } else if (Date.now() - started > timeoutMs) {
            clearInterval(tick)
            reject(new Error(`timed out waiting for ${what}`))
          }
        }, 2)
      })
  )
