/**
 * A simulated LLM latency for scale-out runs: the offline model of `actors/Model.ts`,
 * each of its calls made to wait `ms` first, as a remote model would. Nothing else about
 * the model changes (same answers, same cost); `actors/Model.ts` itself is untouched.
 */
import { Effect, Layer } from "effect"
import * as Model from "../../actors/Model.js"

/** Every method of `service` that returns an Effect, made to sleep `ms` before it runs. */
export const delayed = <S extends object>(service: S, ms: number): S => {
  const out: Record<string, unknown> = {}
  const proto = Object.getPrototypeOf(service) as object | null
  const keys = new Set([
    ...Object.keys(service),
    ...(proto !== null && proto !== Object.prototype ? Object.getOwnPropertyNames(proto) : [])
  ])
  keys.delete("constructor")
  for (const key of keys) {
    const value = (service as Record<string, unknown>)[key]
    out[key] =
      typeof value === "function"
        ? (...args: Array<unknown>) => {
            const result = (value as (...a: Array<unknown>) => unknown).apply(service, args)
            return Effect.isEffect(result) ? Effect.zipRight(Effect.sleep(ms), result) : result
          }
        : value
  }
  return out as S
}

/** The offline model with `ms` of latency on every call. */
export const layer = (ms: number) =>
  Layer.effect(
    Model.Model,
    Effect.map(Model.Model, (service) => delayed(service, ms))
  ).pipe(Layer.provide(Model.layerOffline))
