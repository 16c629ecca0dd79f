/** `npm run build`: compiles to dist/ (see `Dist.ts`); production runs `node dist/bin/worker.js`. */
import { build } from "./Dist.js"

const result = await build({ echo: true })
if (!result.ok) {
  console.error("build failed: the compiler reported errors (above)")
  process.exit(1)
}
console.log(`built dist/ in ${(result.ms / 1000).toFixed(1)} s`)
