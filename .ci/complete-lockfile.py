#!/usr/bin/env python3
"""Adds lockfile entries for optional platform binaries the registry mirror here does not
serve (other OS/CPU builds of rollup, msgpackr-extract, ...). npm records an optional
dependency only if it could read its metadata; without the entries `npm ci` refuses the
lockfile as out of sync on every machine. Each entry gets the version its parent pins and
the os/cpu/libc its name states, so npm skips it on other platforms and fetches it by name
and version where it applies. Run after `npm install` changes the lockfile."""
import json, re, sys

path = sys.argv[1] if len(sys.argv) > 1 else "package-lock.json"
lock = json.load(open(path))
pk = lock["packages"]
added = 0
for parent, meta in list(pk.items()):
    for dep, spec in (meta.get("optionalDependencies") or {}).items():
        key = "node_modules/" + dep
        if key in pk or not re.fullmatch(r"\d+\.\d+\.\d+", spec):
            continue
        m = re.search(r"-(android|darwin|freebsd|linux|openbsd|openharmony|win32|sunos|aix)-(.*)$", dep)
        if not m:
            continue
        os_, rest = m.group(1), m.group(2).split("-")
        cpu = rest[0]
        entry = {"version": spec, "cpu": [cpu], "os": [os_], "optional": True}
        if meta.get("dev"):
            entry["dev"] = True
        libc = rest[1] if len(rest) > 1 else ""
        if libc.startswith("gnu") and os_ == "linux":
            entry["libc"] = ["glibc"]
        elif libc.startswith("musl"):
            entry["libc"] = ["musl"]
        pk[key] = entry
        added += 1
lock["packages"] = dict(sorted(pk.items(), key=lambda kv: (kv[0] != "", kv[0])))
json.dump(lock, open(path, "w"), indent=2)
open(path, "a").write("\n")
print(f"added {added} optional platform entries to {path}")
