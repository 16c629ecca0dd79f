/**
 * Public surface of `gateway/`: the WebSocket + HTTP gateway service and its layer, its
 * settings, client authentication (JWT), its WebSocket frames and its errors. The engine
 * (connections, subscriptions and their shared live tails, HTTP routes, the command API,
 * webhooks, metrics, the dashboard's files) lives in `gateway/internal/`.
 */
export * as Auth from "./Auth.js"
export * as Errors from "./Errors.js"
export * as Frame from "./Frame.js"
export * as Gateway from "./Gateway.js"
export * as GatewayConfig from "./GatewayConfig.js"
