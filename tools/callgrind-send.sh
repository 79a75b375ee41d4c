#!/usr/bin/env bash
# Instructions per SEND IOCTL (64 bytes) through the embedded device, counted by valgrind's
# callgrind: two runs of `wskctl bench --small --case send-64 --ours-only` that differ only
# in the number of requests; the difference of each cost divided by the difference of the
# request counts is the cost of one request, start-up and tear-down cancelled out.
#
# Instructions are attributed by the source file of each instruction (callgrind_annotate,
# exclusive costs; code inlined from std is std's):
#   driver    src/ of the root package (wskclient)
#   wsk       crates/wsk
#   contract  crates/wskclient-ioctl
#   ours+     crates/wsk-sys, crates/nt-imports (also ours)
#   ntsim     crates/ntsim (the emulated kernel, I/O manager and WSK provider)
#   wskctl    crates/wskctl (the benchmark's own loop)
#   hashing   SipHash and hash tables (core::hash, std's RandomState, hashbrown)
#   malloc    the allocator (glibc malloc/free/calloc, std's alloc shims)
#   other     everything else (std, memcpy/memset, futex and thread hand-off, ...)
# It also prints "ours by symbol": the instructions in functions whose symbol is in the
# wskclient, wsk or wskclient_ioctl crates (inlined std code included).
#
# Usage: tools/callgrind-send.sh [N1 [N2]]   (defaults 2000 and 12000 requests)
# Env:   WSKCTL_NTSIM_COMPLETION=inline|pending (default: the emulator's default mode)
#        CALLGRIND_KEEP=DIR to keep the profiles and annotations in DIR.
# Needs: valgrind (callgrind_annotate), python3, cargo. Not run by CI.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
n1=${1:-2000}
n2=${2:-12000}
if [ "$n2" -le "$n1" ]; then
    echo "callgrind-send: N2 ($n2) must be larger than N1 ($n1)" >&2
    exit 2
fi
out=${CALLGRIND_KEEP:-$(mktemp -d)}
mkdir -p "$out"

(cd "$root" && cargo build --release -p wskctl --quiet)
bin=$root/target/release/wskctl

for n in "$n1" "$n2"; do
    WSKCTL_QUIET=1 valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$n" \
        "$bin" bench --small --case send-64 --ours-only --ops "$n" --rounds 1 \
        --warmup 200 --json >"$out/bench.$n.json" 2>"$out/valgrind.$n.log"
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$out/callgrind.$n" \
        >"$out/annotate.$n.txt" 2>/dev/null
done

python3 - "$root" "$n1" "$n2" "$out" <<'EOF'
import json, re, sys

root, n1, n2, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
line_re = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?):(.*?)(?:\s+\[[^\]]*\])?\s*$")
total_re = re.compile(r"^\s*([\d,]+)\s+\(.*\)\s+PROGRAM TOTALS")

def load(n):
    costs, total = {}, None
    with open(f"{out}/annotate.{n}.txt") as f:
        for line in f:
            m = total_re.match(line)
            if m:
                total = int(m.group(1).replace(",", ""))
                continue
            m = line_re.match(line)
            if m and "=>" not in line:
                key = (m.group(2), re.sub(r"'\d+$", "", m.group(3)))
                costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    if total is None:
        sys.exit(f"callgrind-send: no PROGRAM TOTALS in {out}/annotate.{n}.txt")
    return costs, total

def category(path, fn):
    # Paths are relative to the workspace root (cargo's build) or absolute.
    p = path[len(root) + 1:] if path.startswith(root + "/") else path
    if p.startswith("src/"):
        return "driver"
    if p.startswith("crates/wsk/"):
        return "wsk"
    if p.startswith("crates/wskclient-ioctl/"):
        return "contract"
    if p.startswith("crates/wsk-sys/") or p.startswith("crates/nt-imports/"):
        return "ours+"
    if p.startswith("crates/ntsim/"):
        return "ntsim"
    if p.startswith("crates/wskctl/"):
        return "wskctl"
    if "/hash/" in p or "hashbrown" in p or "sip.rs" in p or \
            re.search(r"hash::|Hasher|hashbrown", fn):
        return "hashing"
    if "malloc" in p or "/sys/alloc/" in p or "alloc/src/alloc.rs" in p or \
            re.search(r"(^|::|__)(malloc|calloc|realloc|free|__rdl_\w+|__rust_\w*alloc\w*)$", fn):
        return "malloc"
    return "other"

sym_re = re.compile(r"^[<&*\s]*(?:mut\s+|const\s+)?(wskclient_ioctl|wskclient|wsk)::")

def ours_by_symbol(fn):
    return bool(sym_re.match(fn))

(c1, t1), (c2, t2) = load(n1), load(n2)
ops1 = ops2 = None
for n in (n1, n2):
    with open(f"{out}/bench.{n}.json") as f:
        rep = json.load(f)
    row = rep["rows"][0]
    if not rep["ok"]:
        sys.exit(f"callgrind-send: the bench run with --ops {n} failed: {row['detail']}")
    if n == n1:
        ops1, mode = row["ours"]["ops"], rep["completion_mode"]
    else:
        ops2 = row["ours"]["ops"]
d_ops = ops2 - ops1
cats = ["driver", "wsk", "contract", "ours+", "ntsim", "wskctl", "hashing", "malloc", "other"]
per = {c: 0.0 for c in cats}
by_key = {}
sym = 0.0
for key in set(c1) | set(c2):
    d = (c2.get(key, 0) - c1.get(key, 0)) / d_ops
    per[category(*key)] += d
    by_key[key] = d
    if ours_by_symbol(key[1]):
        sym += d
total = (t2 - t1) / d_ops
ours = per["driver"] + per["wsk"] + per["contract"] + per["ours+"]
print(f"instructions per SEND IOCTL (64 B), embedded device, completion mode {mode}")
print(f"runs: {ops1} and {ops2} timed requests (+200 warm-up each); per request = difference / {d_ops}")
for c in cats:
    print(f"  {c:<10} {per[c]:>10.1f}")
print(f"  {'ours':<10} {ours:>10.1f}   (driver + wsk + contract + ours+; goal <= 250)")
print(f"  {'total':<10} {total:>10.1f}   (the whole process)")
print(f"  ours by symbol (wskclient/wsk/wskclient_ioctl functions, inlined std included): {sym:.1f}")
print("top 25 (file:function) per request:")
for (path, fn), d in sorted(by_key.items(), key=lambda kv: -kv[1])[:25]:
    short = path[len(root) + 1:] if path.startswith(root + "/") else path
    print(f"  {d:>9.1f}  {category(path, fn):<8} {short}:{fn[:110]}")
EOF
echo "profiles: $out"
