/**
 * The deployment's topology as a service. Building the layer provisions every stream and
 * KV bucket idempotently, so anything that depends on `Deployment` finds them in place.
 */
import { Context, Effect, Layer } from "effect"
import type { Subjects } from "../protocols/index.js"
import type { ProvisionError } from "./Errors.js"
import * as NatsClientModule from "./NatsClient.js"
import { NatsClient } from "./NatsClient.js"
import * as NatsConfigModule from "./NatsConfig.js"
import { NatsConfig } from "./NatsConfig.js"
import * as Provision from "./Provision.js"
import * as Topology from "./Topology.js"

/** The provisioned topology of this deployment. */
export interface DeploymentInfo {
  readonly topology: Topology.Topology
  readonly subjects: Subjects.Subjects
  /** nats-server version, for capability checks (2.10+ features are gated on it). */
  readonly serverVersion: string
}

/** The provisioned deployment. */
export class Deployment extends Context.Tag("nexus/Deployment")<Deployment, DeploymentInfo>() {}

/** Provisions the topology described by `NatsConfig` and provides it. */
export const layer: Layer.Layer<Deployment, ProvisionError, NatsClient | NatsConfig> = Layer.effect(
  Deployment,
  Effect.gen(function* () {
    const cfg = yield* NatsConfig
    const { nc } = yield* NatsClient
    const topology = Topology.make({ prefix: cfg.prefix, partitions: cfg.partitions, replicas: cfg.replicas })
    yield* Provision.streamsAndBuckets(topology)
    return { topology, subjects: topology.subjects, serverVersion: nc.info?.version ?? "unknown" }
  })
)

/** NATS connection, configuration and provisioned deployment, all from the environment. */
export const layerFromEnv = layer.pipe(
  Layer.provideMerge(NatsClientModule.layer),
  Layer.provideMerge(NatsConfigModule.layer)
)

/** The same over fixed settings (tests, embedded runs). */
export const layerWith = (settings: Partial<NatsConfigModule.NatsSettings>) =>
  layer.pipe(Layer.provideMerge(NatsClientModule.layer), Layer.provideMerge(NatsConfigModule.layerWith(settings)))
