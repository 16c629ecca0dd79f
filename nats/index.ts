/** Public surface of `nats/`: connection, configuration, topology and provisioning. */
export * as AckedPublisher from "./AckedPublisher.js"
export * as Deployment from "./Deployment.js"
export * as FastKv from "./FastKv.js"
export * as NatsErrors from "./Errors.js"
export * as NatsClient from "./NatsClient.js"
export * as NatsConfig from "./NatsConfig.js"
export * as Provision from "./Provision.js"
export * as Topology from "./Topology.js"
