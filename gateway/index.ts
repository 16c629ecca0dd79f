/**
 * Public surface of `gateway/`: the WebSocket + HTTP gateway service and its layer, its
 * settings, its WebSocket frames and its errors. The engine (connections, subscriptions,
 * HTTP routing) lives in `gateway/internal/`.
 */
export * as Errors from "./Errors.js"
export * as Frame from "./Frame.js"
export * as Gateway from "./Gateway.js"
export * as GatewayConfig from "./GatewayConfig.js"
