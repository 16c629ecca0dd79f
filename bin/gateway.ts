/** `npm run gateway`: the WebSocket and HTTP gateway alone. */
import { main } from "./Launch.js"

main({ runtime: false, gateway: true })
