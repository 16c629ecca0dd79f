/** `npm run worker`: a runtime node (actors, agents, command router); scale by running more. */
import { main } from "./Launch.js"

main({ runtime: true, gateway: false })
