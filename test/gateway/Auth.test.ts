/**
 * Token verification without a gateway around it: RS256 tokens checked against the keys a
 * real JWKS endpoint (loopback) serves, HS256 ones against the secret; wrong algorithm,
 * unknown key, missing claims, issuer and audience checks refused with a reason.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import * as Auth from "../../gateway/Auth.js"
import * as GatewayConfig from "../../gateway/GatewayConfig.js"
import { authSettings, SECRET, token } from "./Tokens.js"

const { publicKey, privateKey } = await generateKeyPair("RS256")
const other = await generateKeyPair("RS256")
const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" }
const server = http.createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] })))
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`

const rs = (claims: Record<string, unknown>, key = privateKey, kid = "k1") =>
  new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid }).setSubject("svc").setIssuer("idp").setAudience("nexus").setExpirationTime("1h").sign(key)

const verify = (settings: Partial<GatewayConfig.GatewaySettings>, jwt: string) =>
  Effect.flatMap(Auth.Auth, (a) => a.verify(jwt)).pipe(
    Effect.provide(Auth.layer.pipe(Layer.provide(GatewayConfig.layerWith(settings)))),
    Effect.either
  )

describe("Auth", () => {
  it.effect("RS256 tokens against a JWKS endpoint, with issuer and audience checks", () =>
    Effect.gen(function* () {
      yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
      const jwks = { jwksUrl: Option.some(jwksUrl), jwtIssuer: Option.some("idp"), jwtAudience: Option.some("nexus") }
      const ok = yield* verify(jwks, yield* Effect.promise(() => rs({ tenant: "acme", role: "admin" })))
      expect(ok).toMatchObject({ _tag: "Right", right: { tenant: "acme", role: "admin", sub: "svc" } })
      const forged = yield* verify(jwks, yield* Effect.promise(() => rs({ tenant: "acme", role: "admin" }, other.privateKey)))
      expect(forged).toMatchObject({ _tag: "Left", left: { reason: "invalid" } })
      const hs = yield* verify(jwks, yield* Effect.promise(() => token("acme")))
      expect(hs, "an HS256 token where RS256 is expected").toMatchObject({ _tag: "Left", left: { reason: "invalid" } })
      const noTenant = yield* verify(jwks, yield* Effect.promise(() => rs({ role: "admin" })))
      expect(noTenant).toMatchObject({ _tag: "Left", left: { message: expect.stringContaining("'tenant'") } })
      const badRole = yield* verify(jwks, yield* Effect.promise(() => rs({ tenant: "acme", role: "root" })))
      expect(badRole._tag).toBe("Left")
      const wrongAudience = yield* verify({ ...jwks, jwtAudience: Option.some("other") }, yield* Effect.promise(() => rs({ tenant: "acme", role: "admin" })))
      expect(wrongAudience).toMatchObject({ _tag: "Left", left: { message: expect.stringContaining("aud") } })
    }).pipe(Effect.scoped))

  it.effect("HS256 tokens against the secret: expired, forged, tenant that is not a token", () =>
    Effect.gen(function* () {
      expect(yield* verify(authSettings, yield* Effect.promise(() => token("acme", "viewer")))).toMatchObject({ _tag: "Right", right: { role: "viewer" } })
      expect(yield* verify(authSettings, yield* Effect.promise(() => token("acme", "viewer", { ttlSec: -5 })))).toMatchObject({ _tag: "Left", left: { reason: "expired" } })
      expect(yield* verify(authSettings, yield* Effect.promise(() => token("acme", "viewer", { secret: `${SECRET}-other` })))).toMatchObject({ _tag: "Left", left: { reason: "invalid" } })
      expect((yield* verify(authSettings, yield* Effect.promise(() => token("a.b", "viewer"))))._tag).toBe("Left")
      expect(Auth.allows("viewer", "command")).toBe(false)
      expect(Auth.allows("operator", "command")).toBe(true)
    }))
})
