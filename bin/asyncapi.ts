/** `npm run asyncapi`: writes the generated AsyncAPI document to docs/asyncapi.json. */
import { writeFileSync } from "node:fs"
import { AsyncApi } from "../protocols/index.js"

const file = new URL("../docs/asyncapi.json", import.meta.url)
writeFileSync(file, JSON.stringify(AsyncApi.make(), null, 2) + "\n")
console.log(`wrote docs/asyncapi.json`)
