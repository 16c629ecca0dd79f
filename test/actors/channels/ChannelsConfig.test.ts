/**
 * The live channels from the environment: a provider's adapter exists only when its
 * settings are present, and its module (with the provider's SDK) is loaded only then.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import type { DeliveryRequest } from "../../../actors/Channels.js"
import * as ChannelsConfig from "../../../actors/channels/ChannelsConfig.js"

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries.map(([k, v]) => [k, v] as [string, string]))))

describe("channels config", () => {
  it.effect("no provider settings: no live adapter", () =>
    Effect.gen(function* () {
      const adapters = yield* ChannelsConfig.adapters.pipe(withEnv([]))
      expect(adapters).toEqual([])
    })
  )

  it.effect("each provider whose settings are present: its adapter", () =>
    Effect.gen(function* () {
      const adapters = yield* ChannelsConfig.adapters.pipe(
        withEnv([
          ["VAPI_API_KEY", "vapi-test"],
          ["VAPI_PHONE_NUMBER_ID", "pn-1"],
          ["VAPI_ASSISTANT_ID", "asst-1"],
          ["SMTP_HOST", "127.0.0.1"],
          ["SMTP_FROM", "Sales@Nexus.example"],
          ["SMS_BASE_URL", "http://127.0.0.1:9"],
          ["SMS_ACCOUNT_SID", "AC1"],
          ["SMS_AUTH_TOKEN", "token"],
          ["SMS_FROM", "+15550001"]
        ])
      )
      // these providers send from one account whatever the request
      const request = {} as DeliveryRequest
      expect(adapters.map((a) => [a.channel, a.account(request)])).toEqual([
        ["voice", "vapi:pn-1"],
        ["email", "smtp:sales@nexus.example"],
        ["sms", "sms:+15550001"]
      ])
      expect(adapters[0]!.limits.maxActive).toBe(10)
      expect(adapters[1]!.limits.maxPerDay).toBe(500)
    })
  )

  it.effect("email alone: the Vapi settings are incomplete, so no voice adapter", () =>
    Effect.gen(function* () {
      const adapters = yield* ChannelsConfig.adapters.pipe(
        withEnv([
          ["VAPI_API_KEY", "vapi-test"],
          ["SMTP_HOST", "127.0.0.1"],
          ["SMTP_FROM", "sales@nexus.example"]
        ])
      )
      expect(adapters.map((a) => a.channel)).toEqual(["email"])
    })
  )
})
