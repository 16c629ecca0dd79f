/**
 * WebSocket client processes for the gateway benchmark: each child process opens `count`
 * connections to the gateway, subscribes every one to the campaign, says `ready` when all
 * are subscribed, records for every event frame the time from the event's creation (its
 * envelope `ts`, same machine clock) to its arrival, and prints the samples when told to
 * stop. Loopback only; the children exit with the parent.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"

/** The child's program (plain ESM on `ws`, run with `node --input-type=module`). */
const CHILD = String.raw`
import WebSocket from "ws"
const [url, campaignId, fromSeq, count] = process.argv.slice(1)
const samples = []
let subscribed = 0, open = 0, failed = 0
const sockets = []
const connectOne = () => new Promise((resolve) => {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  ws.on("open", () => { open++; ws.send(JSON.stringify({ op: "subscribe", campaignId, fromSeq: Number(fromSeq) })); resolve() })
  ws.on("message", (data) => {
    const now = Date.now()
    // no JSON.parse: the clients share two cores with the gateway and the NATS server
    const text = data.toString("latin1")
    if (text.startsWith('{"op":"event"')) {
      const at = text.indexOf('"ts":') + 5
      samples.push(now - Number(text.slice(at, text.indexOf(",", at))))
    } else if (text.startsWith('{"op":"subscribed"') && ++subscribed === Number(count)) console.log(JSON.stringify({ ready: true }))
  })
  ws.on("error", () => { failed++; resolve() })
  sockets.push(ws)
})
for (let i = 0; i < Number(count); i += 100) await Promise.all(Array.from({ length: Math.min(100, Number(count) - i) }, connectOne))
if (failed > 0) console.log(JSON.stringify({ error: failed + " connections failed" }))
process.stdin.on("data", () => {
  console.log(JSON.stringify({ samples }))
  for (const ws of sockets) ws.terminate()
  setTimeout(() => process.exit(0), 50)
})
`

/** A running client process. */
export interface ClientProcess {
  readonly ready: Promise<void>
  /** Stops the clients and returns their latency samples (ms). */
  readonly stop: () => Promise<ReadonlyArray<number>>
  readonly child: ChildProcess
}

/** Starts a child with `count` clients. */
export const start = (url: string, campaignId: string, fromSeq: number, count: number, cwd: string): ClientProcess => {
  const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD, url, campaignId, String(fromSeq), String(count)], {
    cwd,
    stdio: ["pipe", "pipe", "inherit"]
  })
  const lines = createInterface({ input: child.stdout! })
  let onReady: () => void = () => {}
  let onFail: (e: Error) => void = () => {}
  let onSamples: (s: ReadonlyArray<number>) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve
    onFail = reject
  })
  const samples = new Promise<ReadonlyArray<number>>((resolve) => (onSamples = resolve))
  lines.on("line", (line) => {
    const m = JSON.parse(line)
    if (m.ready) onReady()
    if (m.error) onFail(new Error(m.error))
    if (m.samples) onSamples(m.samples)
  })
  child.once("exit", (code) => onFail(new Error(`client process exited with ${code}`)))
  process.once("exit", () => child.kill("SIGKILL"))
  return {
    ready,
    child,
    stop: () => {
      child.stdin!.write("stop\n")
      return samples
    }
  }
}
