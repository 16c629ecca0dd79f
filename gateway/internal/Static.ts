/**
 * Files the gateway serves as they are: the dashboard (one HTML page, its script and
 * stylesheet, all local: no CDN) and the AsyncAPI document generated from `protocols/`.
 * Both are public: the dashboard asks for a token and uses it for every API and WebSocket
 * call; the AsyncAPI document describes the interface, not any tenant's data.
 */
import { readFileSync } from "node:fs"
import type { ServerResponse } from "node:http"
import { AsyncApi } from "../../protocols/index.js"
import { sendText } from "./HttpIo.js"

const FILES: Record<string, readonly [file: string, contentType: string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/index.html": ["index.html", "text/html; charset=utf-8"],
  "/dashboard.js": ["dashboard.js", "text/javascript; charset=utf-8"],
  "/dashboard.css": ["dashboard.css", "text/css; charset=utf-8"]
}

const SECURITY = {
  "content-security-policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache"
}

/** True when `pathname` is a static file or the AsyncAPI document. */
export const isStatic = (pathname: string): boolean => pathname in FILES || pathname === "/asyncapi.json"

/** Serves the static files of one gateway (read once, kept in memory). */
export const make = (prefix: string) => {
  const cache = new Map<string, Buffer>()
  let asyncapi: string | undefined
  const read = (file: string) => {
    let b = cache.get(file)
    if (b === undefined) {
      b = readFileSync(new URL(`../dashboard/${file}`, import.meta.url))
      cache.set(file, b)
    }
    return b
  }
  return (res: ServerResponse, pathname: string): void => {
    if (pathname === "/asyncapi.json") {
      asyncapi ??= JSON.stringify(AsyncApi.make({ prefix }), null, 2)
      return sendText(res, 200, "application/json", asyncapi, { "cache-control": "no-cache" })
    }
    const [file, type] = FILES[pathname]!
    sendText(res, 200, type, read(file), SECURITY)
  }
}
