import * as Baseline from "./campaign/Baseline.js"
const r = await Baseline.run({ contacts: Number(process.argv[2] ?? 10000) })
console.log(JSON.stringify(r, null, 1))
