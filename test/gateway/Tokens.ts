/**
 * JWTs for gateway tests: an HS256 secret shared with the gateway under test and tokens
 * signed with it (or with another secret, or already expired) through `Auth.issue`.
 */
import { Option, Redacted } from "effect"
import * as Auth from "../../gateway/Auth.js"

/** The gateway's secret in tests. */
export const SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

/** `GatewaySettings` fields that make the gateway accept tokens signed with `SECRET`. */
export const authSettings = { jwtSecret: Option.some(Redacted.make(SECRET)) }

/** A token of `tenant` with `role` (default operator), valid for `ttlSec` (default 1 h; negative: expired). */
export const token = (tenant: string, role: Auth.Role = "operator", options: { readonly ttlSec?: number; readonly secret?: string; readonly sub?: string } = {}) =>
  Auth.issue(options.secret ?? SECRET, { tenant, role, sub: options.sub ?? `user-of-${tenant}` }, { ttlSec: options.ttlSec ?? 3600 })
