/** Public surface of `runtime/`: define actors and agents, run a node, locks, metrics. */
export * as Actor from "./Actor.js"
export * as Agent from "./Agent.js"
export * as RuntimeErrors from "./Errors.js"
export * as Locks from "./Locks.js"
export * as Metrics from "./Metrics.js"
export * as Node from "./Node.js"
export * as Outbox from "./Outbox.js"
export * as Supervision from "./Supervision.js"
