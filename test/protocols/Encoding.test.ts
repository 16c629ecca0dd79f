/**
 * `Encoding.encoderOf`: the identity only where `Schema.encodeSync` is the identity, with its
 * results and its errors everywhere. Checked on schemas with each kind of transformation,
 * and on every message type and actor state the CRM puts on the wire or in storage.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { CrmApp } from "../../actors/index.js"
import * as Engagement from "../../actors/contact/Engagement.js"
import { Encoding } from "../../protocols/index.js"
import { snapshot } from "../fixtures/Contacts.js"

const WithDefaults = Schema.Struct({
  id: Schema.String.pipe(Schema.brand("Id")),
  n: Schema.optionalWith(Schema.Int, { default: () => 1 }),
  tags: Schema.Array(Schema.Literal("a", "b")),
  nested: Schema.NullOr(Schema.Struct({ at: Schema.Number.pipe(Schema.nonNegative()) })),
  rest: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})

describe("Encoding", () => {
  it("plain JSON shapes with decoding defaults, brands, refinements and records encode as themselves", () => {
    expect(Encoding.isIdentity(WithDefaults.ast)).toBe(true)
    const encode = Encoding.encoderOf(WithDefaults)
    const value = WithDefaults.make({ id: "x" as never, n: 2, tags: ["a"], nested: { at: 3 }, rest: { k: [1] } })
    expect(encode(value)).toBe(value)
    expect(encode(value)).toEqual(Schema.encodeSync(WithDefaults)(value))
  })

  it("anything that changes a value on encoding keeps the full encoder", () => {
    const cases = {
      date: Schema.Struct({ at: Schema.Date }),
      numberFromString: Schema.Struct({ n: Schema.NumberFromString }),
      renamed: Schema.Struct({ a: Schema.propertySignature(Schema.String).pipe(Schema.fromKey("b")) }),
      option: Schema.Struct({ o: Schema.optionalWith(Schema.String, { as: "Option" }) }),
      trimmed: Schema.Struct({ s: Schema.Trim }),
      declaration: Schema.Array(Schema.DateFromSelf)
    }
    for (const [name, schema] of Object.entries(cases)) expect(Encoding.isIdentity(schema.ast), name).toBe(false)
    const encode = Encoding.encoderOf(cases.date)
    expect(encode({ at: new Date(0) })).toEqual({ at: "1970-01-01T00:00:00.000Z" })
  })

  it("an invalid value fails as Schema.encodeSync fails", () => {
    const encode = Encoding.encoderOf(WithDefaults)
    const bad = { id: "x", n: 1.5, tags: ["c"], nested: { at: -1 }, rest: {} } as never
    expect(() => encode(bad)).toThrowError(expect.objectContaining({ _tag: "ParseError" }))
    expect(() => Schema.encodeSync(WithDefaults)(bad)).toThrow()
  })

  it("every CRM message type and the contact state encode as themselves, and to the same JSON", () => {
    const types = [...CrmApp.registry.types.values()]
    const full = types.filter((d) => !Encoding.isIdentity(d.payload.ast)).map((d) => d.type)
    // the full encoder is kept only where a payload really transforms (none today)
    expect(full).toEqual([])
    expect(Encoding.isIdentity(Engagement.State.ast)).toBe(true)
    const state: Engagement.State = {
      active: {
        campaignId: "c2",
        contact: snapshot("c-1"),
        channel: "email",
        brief: { goal: "g", tone: "t", valueProposition: "v", callToAction: "c" },
        phase: "drafting",
        outcome: null,
        sequence: ["email", "sms"],
        touch: 1,
        maxTouches: 2,
        gapMs: 1000,
        draft: null,
        wake: { token: "w", until: 5, resume: "touch", reason: "next-touch" },
        call: null,
        stop: null,
        locked: true,
        policy: { onConflict: "wait", priority: 2, maxWaitMs: 10 },
        lockWaitSince: null,
        allowance: { actions: 2, usd: 0.5 },
        spent: { actions: 0, usd: 0 },
        dispatchedAt: 3
      },
      history: [{ campaignId: "c1", status: "reached", at: 1, replied: true }],
      optedOut: false,
      waiting: []
    }
    expect(JSON.stringify(Encoding.encoderOf(Engagement.State)(state))).toBe(JSON.stringify(Schema.encodeSync(Engagement.State)(state)))
  })
})
