/** `npm start`: one process with a runtime node and the gateway. */
import { main } from "./Launch.js"

main({ runtime: true, gateway: true, devAuth: true })
