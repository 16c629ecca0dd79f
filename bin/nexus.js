#!/usr/bin/env node
// The `nexus` executable: runs bin/nexus.ts through tsx's loader in this process.
import { register } from "tsx/esm/api"

register()
await import("./nexus.ts")
