/**
 * Authentication of gateway clients by JWT. A token is verified (signature, `exp`, and
 * `iss`/`aud` when configured) with `jose`: HS256 against `GATEWAY_JWT_SECRET`, or
 * RS256/ES256 against the keys of `GATEWAY_JWKS_URL`. Its claims give the principal:
 * `tenant` (the only source of a client's tenant), `role` and `sub`. Without a secret or
 * a JWKS URL the layer does not build: nothing is ever served unauthenticated.
 *
 * Roles: `viewer` reads (WebSocket, dashboard); `operator` also sends commands and
 * retries dead letters; `admin` may do everything.
 */
import type { IncomingHttpHeaders } from "node:http"
import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTVerifyGetKey } from "jose"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { Ids } from "../protocols/index.js"
import { AuthError } from "./Errors.js"
import { GatewayConfig } from "./GatewayConfig.js"

/** A client role. */
export const Role = Schema.Literal("viewer", "operator", "admin")
export type Role = typeof Role.Type

/** Who a verified token speaks for. */
export interface Principal {
  readonly tenant: Ids.TenantId
  readonly role: Role
  /** The user (or system) id; recorded as `by` in commands. */
  readonly sub: string
  /** Expiry, epoch milliseconds. */
  readonly expiresAt: number
}

/** What a role may do. */
export type Permission = "read" | "command"

/** True when `role` grants `permission`. */
export const allows = (role: Role, permission: Permission): boolean =>
  permission === "read" ? true : role === "operator" || role === "admin"

const Claims = Schema.Struct({
  tenant: Ids.TenantId,
  role: Role,
  sub: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  exp: Schema.Number
})
const decodeClaims = Schema.decodeUnknownEither(Claims, { errors: "first" })

/** Verifies tokens. */
export interface AuthService {
  readonly verify: (token: string) => Effect.Effect<Principal, AuthError>
}

/** The authentication service. */
export class Auth extends Context.Tag("nexus/GatewayAuth")<Auth, AuthService>() {}

/** The bearer token of a request: `Authorization: Bearer <t>`, else the `token` query parameter. */
export const tokenOf = (headers: IncomingHttpHeaders, url: string | undefined): Option.Option<string> => {
  const header = headers.authorization
  if (typeof header === "string") {
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim())
    if (m) return Option.some(m[1]!)
  }
  const q = new URL(url ?? "/", "http://gateway").searchParams.get("token")
  return q === null || q === "" ? Option.none() : Option.some(q)
}

const refuse = (e: unknown): AuthError => {
  if (e instanceof errors.JWTExpired) return new AuthError({ reason: "expired", message: "the token has expired" })
  if (e instanceof errors.JWSSignatureVerificationFailed || e instanceof errors.JWKSNoMatchingKey) {
    return new AuthError({ reason: "invalid", message: "the token's signature does not verify" })
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    return new AuthError({ reason: "invalid", message: `claim '${e.claim}' is not acceptable: ${e.reason}` })
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return new AuthError({ reason: "invalid", message: "the token's algorithm is not accepted" })
  return new AuthError({ reason: "invalid", message: `the token is not valid: ${e instanceof Error ? e.message : String(e)}` })
}

/** The service over a verification key. */
export const make = (
  key: Uint8Array | JWTVerifyGetKey,
  algorithms: ReadonlyArray<string>,
  options: { readonly issuer?: string | undefined; readonly audience?: string | undefined } = {}
): AuthService => ({
  verify: (token) =>
    Effect.tryPromise({
      try: () =>
        jwtVerify(token, key as Uint8Array, {
          algorithms: [...algorithms],
          requiredClaims: ["exp", "sub"],
          ...(options.issuer ? { issuer: options.issuer } : {}),
          ...(options.audience ? { audience: options.audience } : {})
        }),
      catch: refuse
    }).pipe(
      Effect.flatMap(({ payload }) => {
        const claims = decodeClaims(payload)
        if (claims._tag === "Left") {
          return Effect.fail(new AuthError({ reason: "invalid", message: "the token lacks valid 'tenant', 'role', 'sub' or 'exp' claims" }))
        }
        const c = claims.right
        return Effect.succeed<Principal>({ tenant: c.tenant, role: c.role, sub: c.sub, expiresAt: c.exp * 1000 })
      })
    )
})

/** Builds the service from `GatewayConfig`; fails when neither a secret nor a JWKS URL is set. */
export const layer: Layer.Layer<Auth, AuthError, GatewayConfig> = Layer.effect(
  Auth,
  Effect.gen(function* () {
    const cfg = yield* GatewayConfig
    const checks = { issuer: Option.getOrUndefined(cfg.jwtIssuer), audience: Option.getOrUndefined(cfg.jwtAudience) }
    if (Option.isSome(cfg.jwksUrl)) {
      const jwks = createRemoteJWKSet(new URL(cfg.jwksUrl.value))
      return make(jwks, ["RS256", "ES256"], checks)
    }
    if (Option.isSome(cfg.jwtSecret)) {
      return make(new TextEncoder().encode(Redacted.value(cfg.jwtSecret.value)), ["HS256"], checks)
    }
    return yield* new AuthError({
      reason: "not_configured",
      message:
        "the gateway needs GATEWAY_JWT_SECRET (32+ characters) or GATEWAY_JWKS_URL to authenticate clients; " +
        "for local runs `nexus start` and `npm run demo` generate a secret and print a dev token"
    })
  })
)

/** Issues an HS256 token (dev tokens, tests, `nexus token`). `ttlSec` defaults to 8 hours. */
export const issue = (
  secret: string,
  claims: { readonly tenant: string; readonly role: Role; readonly sub: string },
  options: { readonly ttlSec?: number; readonly issuer?: string; readonly audience?: string } = {}
): Promise<string> => {
  let jwt = new SignJWT({ tenant: claims.tenant, role: claims.role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlSec ?? 8 * 3600))
  if (options.issuer) jwt = jwt.setIssuer(options.issuer)
  if (options.audience) jwt = jwt.setAudience(options.audience)
  return jwt.sign(new TextEncoder().encode(secret))
}
