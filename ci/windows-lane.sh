#!/usr/bin/env bash
# ci/windows-lane.sh: the Windows-target build of the real driver and the Wine system test
# (issue 6). Runs on a fresh Debian 12 machine as root (or with sudo); idempotent.
#
#  1. install   rustc-web, rust-web-src, cargo-web, lld-22 (bookworm-security), wine64, wine,
#               gcc-mingw-w64-x86-64, socat -- Debian packages only, --no-install-recommends
#  2. build     pecheck (host); the driver `wskclient` (WDM variant, --no-default-features)
#               for x86_64-pc-windows-msvc with -Zbuild-std, linked by lld-link /DRIVER;
#               the ntdll negative driver (ci/ntdll-negative); wskctl.exe for
#               x86_64-win7-windows-gnu with -Zbuild-std and mingw-w64
#  3. pecheck   the driver must PASS (import list printed); the ntdll build and a
#               checksum-tampered copy must FAIL
#  4. wine      fresh headless prefix; sc create/start the driver; wskctl.exe stats, connect
#               (bytes checked by sha256 at a Linux-side socat peer), demo; the Windows peer
#               (wskctl.exe peer: IOCP + AcceptEx + GetAcceptExSockaddrs checking the driver's
#               addresses, ConnectEx + TransmitFile and DisconnectEx(TF_REUSE_SOCKET) to a Linux
#               socat, TransmitPackets or its skip reason); bench (driver vs TransmitFile, ratio);
#               bench --small (SEND / SEND_TO / RECEIVE vs send / sendto / recv, ratios);
#               listen on an explicit port + accept (both addresses) + receive from a Linux
#               client, port-0 listen's status, recv from socat, how CLOSE / abortive
#               DISCONNECT end a connection at a Linux peer (FIN/RST), echo to 24 clients;
#               sc stop (DriverUnload deregisters); the driver's DbgPrintEx lines are checked
#  5. doc       the Wine steps that passed are compared with docs/verification.md's generated
#               block (LANE_UPDATE_DOC=1 rewrites the block instead of failing)
#
# Knobs: LANE_SKIP_INSTALL=1, LANE_TARGET_DIR=DIR (default target/windows-lane), LANE_OUT=DIR
# (default $LANE_TARGET_DIR/out), LANE_KEEP_PREFIX=1, LANE_UPDATE_DOC=1, LANE_CARGO=PATH,
# LANE_PAYLOAD_BYTES=N (default 8 MiB), LANE_DEMO_BYTES=N (default 4 MiB), LANE_BENCH_MIB=N
# (default 64).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_ROOT=${LANE_TARGET_DIR:-$ROOT/target/windows-lane}
OUT=${LANE_OUT:-$TARGET_ROOT/out}
LOGS=$OUT/logs
DOC=$ROOT/docs/verification.md
mkdir -p "$OUT" "$LOGS"

LANE_T0=$(date +%s.%N)
SUMMARY=()
PASSED=()     # ids of the Wine steps that passed, in order (docs/verification.md)
SKIPPED=()    # "id: reason" of the parts the provider cannot serve

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
step() { # step NAME CMD...: run CMD, print and record its wall time
    local name=$1; shift
    echo "=== [$name] start"
    local t0; t0=$(now)
    "$@"
    local dt; dt=$(secs "$t0" "$(now)")
    echo "=== [$name] done in ${dt}s"
    SUMMARY+=("$(printf '%-24s %7ss' "$name" "$dt")")
}
die() { echo "windows-lane: FAIL: $*" >&2; exit 1; }
pass() { PASSED+=("$1"); echo "  ok  wine:$1"; }

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
PKGS=(rustc-web rust-web-src cargo-web lld-22 wine64 wine gcc-mingw-w64-x86-64 socat python3)

# ------------------------------------------------------------------------------- install
install_pkgs() {
    local before after t0
    before=$(df -B1 --output=used / | tail -1)
    echo "disk used before: $((before / 1048576)) MiB"
    local missing=()
    for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all packages present"
        return 0
    fi
    t0=$(now)
    # Lock timeout: other apt users on the machine (unattended upgrades, other jobs).
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q >"$LOGS/apt-update.log" 2>&1 ||
        { tail -20 "$LOGS/apt-update.log"; die "apt-get update"; }
    echo "apt-get update: $(secs "$t0" "$(now)")s"
    t0=$(now)
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o DPkg::Lock::Timeout=600 --no-install-recommends "${PKGS[@]}" \
        >"$LOGS/apt-install.log" 2>&1 || { tail -30 "$LOGS/apt-install.log"; die "apt-get install"; }
    echo "apt-get install (${missing[*]}): $(secs "$t0" "$(now)")s"
    grep -E 'newly installed|^Need to get|^After this operation' "$LOGS/apt-install.log" || true
    after=$(df -B1 --output=used / | tail -1)
    echo "disk used after: $((after / 1048576)) MiB (delta $(((after - before) / 1048576)) MiB)"
}

# ----------------------------------------------------------------------------- toolchain
locate_toolchain() {
    # rustc-web installs /usr/bin/rustc (sysroot /usr); rust-web-src links
    # /usr/lib/rustlib/src/rust -> ../../../src/rustc-<ver>, where -Zbuild-std looks.
    RUSTC_BIN=$(dpkg -L rustc-web | grep -E '/bin/rustc$' | head -1)
    [ -x "$RUSTC_BIN" ] || die "rustc not found in rustc-web"
    CARGO_BIN=${LANE_CARGO:-$(dpkg -L cargo-web 2>/dev/null | grep -E '^/usr/bin/cargo$' | head -1 || true)}
    [ -x "${CARGO_BIN:-}" ] || die "no cargo (install cargo-web)"
    LLD_LINK=$(dpkg -L lld-22 | grep -E '/bin/lld-link$' | head -1)
    [ -x "$LLD_LINK" ] || die "lld-link not found in lld-22"
    local stdsrc; stdsrc=$("$RUSTC_BIN" --print sysroot)/lib/rustlib/src/rust/library
    [ -f "$stdsrc/core/src/lib.rs" ] || die "std sources not found at $stdsrc (rust-web-src?)"

    export RUSTC=$RUSTC_BIN
    export RUSTC_BOOTSTRAP=1   # -Z flags on Debian's stable compiler
    export CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER=$LLD_LINK
    export CARGO_TARGET_X86_64_WIN7_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
    export CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never
    # The lane's builds never touch the developers' target dir.
    export CARGO_TARGET_DIR=$TARGET_ROOT

    echo "rustc:    $RUSTC_BIN ($("$RUSTC_BIN" -V))"
    echo "cargo:    $CARGO_BIN ($("$CARGO_BIN" -V))"
    echo "lld-link: $LLD_LINK ($("$LLD_LINK" --version | head -1))"
    echo "std src:  $(readlink -f "$stdsrc")"
    echo "mingw:    $(x86_64-w64-mingw32-gcc --version | head -1)"
    echo "wine:     $(/usr/lib/wine/wine64 --version)"
}

BUILD_STD_KM=(-Zbuild-std=core,alloc,compiler_builtins -Zbuild-std-features=compiler-builtins-mem)
# lld-link flags of a WDM driver. /RELEASE sets the checksum, /INTEGRITYCHECK FORCE_INTEGRITY,
# /Brepro a deterministic timestamp. No .lib files: every import is raw-dylib.
DRIVER_LINK_ARGS=()
for a in /DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry /NODEFAULTLIB /RELEASE /MACHINE:X64 \
         /INTEGRITYCHECK /OPT:REF /DYNAMICBASE /NXCOMPAT /MANIFEST:NO /MERGE:.rustc=.data /Brepro; do
    DRIVER_LINK_ARGS+=(-C "link-arg=$a")
done
# Whole-program, abort-on-panic release builds for the kernel images (panic=abort also
# comes from .cargo/config.toml for Windows targets; LTO keeps the .sys small).
KM_PROFILE=(--config profile.release.panic=\"abort\" --config profile.release.lto=true
            --config profile.release.codegen-units=1)

build_pecheck() {
    (cd "$ROOT" && "$CARGO_BIN" build -q --release -p pecheck --target-dir "$TARGET_ROOT/host") 2>&1 | tail -5
    PECHECK=$TARGET_ROOT/host/release/pecheck
    [ -x "$PECHECK" ] || die "pecheck did not build"
}

build_driver() {
    (cd "$ROOT" && "$CARGO_BIN" rustc -p wskclient --lib --no-default-features --release \
        "${KM_PROFILE[@]}" --target x86_64-pc-windows-msvc --crate-type cdylib "${BUILD_STD_KM[@]}" \
        -- "${DRIVER_LINK_ARGS[@]}") 2>&1 | grep -Ev '^ +(Compiling|Downloaded|Downloading)' | tail -15
    cp "$TARGET_ROOT/x86_64-pc-windows-msvc/release/wskclient.dll" "$OUT/wskclient.sys"
    ls -l "$OUT/wskclient.sys"
}

build_negative() {
    (cd "$ROOT/ci/ntdll-negative" && "$CARGO_BIN" rustc --release --locked \
        --target x86_64-pc-windows-msvc "${BUILD_STD_KM[@]}" -- "${DRIVER_LINK_ARGS[@]}") 2>&1 |
        grep -Ev '^ +(Compiling|Downloaded|Downloading)' | tail -5
    cp "$TARGET_ROOT/x86_64-pc-windows-msvc/release/ntdll_negative.dll" "$OUT/ntdll-negative.sys"
}

build_wskctl() {
    # panic_abort: .cargo/config.toml gives every Windows target -C panic=abort.
    (cd "$ROOT" && "$CARGO_BIN" build -p wskctl --bin wskctl --release \
        --target x86_64-win7-windows-gnu -Zbuild-std=std,panic_abort) 2>&1 |
        grep -Ev '^ +(Compiling|Downloaded|Downloading)' | tail -5
    cp "$TARGET_ROOT/x86_64-win7-windows-gnu/release/wskctl.exe" "$OUT/wskctl.exe"
    ls -l "$OUT/wskctl.exe"
}

check_pe() {
    "$PECHECK" "$OUT/wskclient.sys" | tee "$LOGS/pecheck-wskclient.txt" || die "pecheck rejected wskclient.sys"
    pass pe-checks

    echo "--- negative: a DbgPrint from windows-sys (ntdll.dll import) must fail"
    if "$PECHECK" "$OUT/ntdll-negative.sys" >"$LOGS/pecheck-negative.txt"; then
        cat "$LOGS/pecheck-negative.txt"; die "pecheck accepted a driver importing ntdll.dll"
    fi
    grep -q 'import ntdll.dll!DbgPrint is from a DLL not allowed' "$LOGS/pecheck-negative.txt" ||
        { cat "$LOGS/pecheck-negative.txt"; die "pecheck failed the negative build for another reason"; }
    grep -E '^FAIL' "$LOGS/pecheck-negative.txt"

    echo "--- negative: a checksum-tampered copy must fail"
    local t=$OUT/wskclient-tampered.sys size last
    cp "$OUT/wskclient.sys" "$t"
    size=$(stat -c %s "$t")
    last=$(od -An -tu1 -j $((size - 1)) -N1 "$t" | tr -d ' ')
    printf "$(printf '\\%03o' $(((last + 1) & 255)))" | dd of="$t" bs=1 seek=$((size - 1)) conv=notrunc status=none
    if "$PECHECK" "$t" >"$LOGS/pecheck-tampered.txt"; then
        cat "$LOGS/pecheck-tampered.txt"; die "pecheck accepted a bad checksum"
    fi
    grep -E '^FAIL' "$LOGS/pecheck-tampered.txt"
    rm -f "$t"
    pass pe-negative-checks
}

# ---------------------------------------------------------------------------------- wine
WINE=/usr/lib/wine/wine64          # the /usr/bin/wine wrapper nags about wine32 on amd64
WINESERVER=/usr/lib/wine/wineserver
SESSION_LOG=$LOGS/wine-session.log
SOCAT_PID=

wine_env() {
    unset DISPLAY WAYLAND_DISPLAY
    export WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
    # DbgPrintEx -> ntdll vDbgPrintExWithPrefix -> WARN on channel "debugstr"
    export WINEDEBUG=warn+debugstr
}

wine_boot() {
    wine_env
    PREFIX_PARENT=$(mktemp -d /tmp/wine-lane.XXXXXX)
    # A not-yet-existing dir: Wine must create the prefix itself.
    export WINEPREFIX=$PREFIX_PARENT/prefix
    echo "WINEPREFIX=$WINEPREFIX"
    trap wine_shutdown EXIT
    timeout 300 "$WINE" wineboot --init >"$LOGS/wineboot.log" 2>&1 || { tail -30 "$LOGS/wineboot.log"; die "wineboot"; }
    timeout 120 "$WINESERVER" -w
    du -sh "$WINEPREFIX"
}

w() { # w LABEL TIMEOUT ARGS...: a Wine command of the session, output appended to the log
    local label=$1 t=$2; shift 2
    echo "--- $label" >>"$SESSION_LOG"
    local rc=0
    timeout "$t" "$WINE" "$@" >>"$SESSION_LOG" 2>&1 || rc=$?
    echo "--- $label: exit $rc" >>"$SESSION_LOG"
    return $rc
}

wskctl() { # wskctl LABEL OUTFILE ARGS...: run wskctl.exe, keep its stdout in OUTFILE too
    local label=$1 o=$2; shift 2
    local rc=0
    WINEDEBUG=err+all timeout 300 "$WINE" 'C:\wskclient\wskctl.exe' "$@" >"$o" 2>"$o.err" || rc=$?
    { echo "--- wskctl $label (exit $rc)"; cat "$o" "$o.err"; } >>"$SESSION_LOG"
    cat "$o"
    [ -s "$o.err" ] && sed 's/^/  stderr: /' "$o.err"
    return $rc
}

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

wine_system_test() {
    wine_env
    : >"$SESSION_LOG"
    mkdir -p "$WINEPREFIX/drive_c/wskclient"
    cp "$OUT/wskclient.sys" "$OUT/wskctl.exe" "$WINEPREFIX/drive_c/wskclient/"
    # One persistent session: services.exe and the winedevice.exe hosting the driver inherit
    # stderr from the session's first process, so the driver's DbgPrintEx lines land in the
    # log together with every command's output.
    "$WINESERVER" -p
    w "sc create" 120 sc create wskclient type= kernel start= demand error= normal \
        binPath= 'C:\wskclient\wskclient.sys' || { cat "$SESSION_LOG"; die "sc create"; }
    w "sc start" 120 sc start wskclient || { cat "$SESSION_LOG"; die "sc start"; }
    grep -Eq 'STATE *: 4 *RUNNING' "$SESSION_LOG" || { cat "$SESSION_LOG"; die "driver not RUNNING"; }
    pass driver-load
    grep -q 'wskclient: DriverEntry: WSK registered, provider version 0100' "$SESSION_LOG" ||
        { cat "$SESSION_LOG"; die "no WSK registration line"; }
    pass wsk-register
    grep -q 'wskclient: DriverEntry: device .Device.WskClient created' "$SESSION_LOG" ||
        { cat "$SESSION_LOG"; die "no device creation line"; }
    pass device-create

    echo "--- wskctl.exe stats"
    wskctl stats "$LOGS/stats-0.txt" stats || die "wskctl stats"
    [ "$(stat_of open_files "$LOGS/stats-0.txt")" = 1 ] || die "QUERY_STATS: open_files != 1"
    pass ioctl-query-stats

    echo "--- wskctl.exe connect: bytes to a Linux-side socat peer"
    local n=${LANE_PAYLOAD_BYTES:-8388608} payload=$OUT/payload.bin received=$OUT/received.bin port
    head -c "$n" /dev/urandom >"$payload"
    rm -f "$received"
    port=$(pick_port)
    socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$received,creat,trunc" &
    SOCAT_PID=$!
    local hexport; hexport=$(printf '%04X' "$port")
    for _ in $(seq 50); do   # until socat listens (state 0A in /proc/net/tcp); no connect probe
        grep -q "0100007F:$hexport 00000000:0000 0A" /proc/net/tcp && break; sleep 0.1
    done
    wskctl connect "$LOGS/connect.txt" connect "127.0.0.1:$port" --file "Z:${payload//\//\\}" ||
        die "wskctl connect"
    for _ in $(seq 100); do kill -0 "$SOCAT_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$SOCAT_PID" || die "socat peer failed"
    SOCAT_PID=
    local want got
    want=$(sha256sum <"$payload" | cut -d' ' -f1)
    got=$(sha256sum <"$received" | cut -d' ' -f1)
    echo "sent     $n bytes sha256 $want"
    echo "received $(stat -c %s "$received") bytes sha256 $got (at the Linux peer)"
    [ "$want" = "$got" ] || die "bytes differ at the Linux peer"
    pass stream-bytes-verified-at-linux-peer

    wskctl stats "$LOGS/stats-1.txt" stats || die "wskctl stats"
    local fb bs; fb=$(stat_of connect_fallbacks "$LOGS/stats-1.txt"); bs=$(stat_of bytes_sent "$LOGS/stats-1.txt")
    [ "${fb:-0}" -gt 0 ] || die "connect_fallbacks is ${fb:-?}, want > 0 (Wine lacks WskSocketConnect)"
    pass connect-fallback
    [ "$bs" = "$n" ] || die "bytes_sent $bs != $n"
    pass send-stats

    echo "--- wskctl.exe demo (receivers in the Wine process, over Linux loopback sockets)"
    local rc=0
    wskctl demo "$LOGS/demo.txt" demo --bytes "${LANE_DEMO_BYTES:-4194304}" --datagrams 100 \
        --timeout-secs 20 --ipv6-optional || rc=$?
    [ $rc -eq 0 ] && grep -q '^demo: OK' "$LOGS/demo.txt" || die "wskctl demo failed ($rc)"
    grep -Eq '^open_stream\+send\+close +IPv4 .* yes ' "$LOGS/demo.txt" || die "demo: IPv4 stream not verified"
    pass demo-ipv4-stream
    grep -Eq '^open_datagram\+send_to .* skipped .*skipped: provider lacks datagram sockets' "$LOGS/demo.txt" ||
        die "demo: datagram part neither verified nor skipped with the reason"
    SKIPPED+=("datagram sockets (WskSendTo, fixed remote): $(grep -Eo 'skipped: provider lacks datagram sockets.*' "$LOGS/demo.txt" | head -1)")
    if grep -Eq '^open_stream\+send\+close +IPv6 .* skipped ' "$LOGS/demo.txt"; then
        SKIPPED+=("IPv6 stream: $(grep -E '^open_stream\+send\+close +IPv6' "$LOGS/demo.txt" | grep -Eo 'skipped: .*')")
    fi
    grep -Eq '^query_stats .* yes ' "$LOGS/demo.txt" || die "demo: stats cross-check failed"

    wine_peer_test "$payload" "$n"
    wine_bench
    wine_bench_small
    wine_server_test

    w "sc stop" 120 sc stop wskclient || { cat "$SESSION_LOG"; die "sc stop"; }
    for _ in $(seq 20); do grep -q 'wskclient: DriverUnload' "$SESSION_LOG" && break; sleep 0.5; done
    grep -Eq 'STATE *: 1 *STOPPED' "$SESSION_LOG" || { cat "$SESSION_LOG"; die "driver not STOPPED"; }
    grep -q 'wskclient: DriverUnload: WSK deregistered, device deleted' "$SESSION_LOG" ||
        { cat "$SESSION_LOG"; die "no DriverUnload line"; }
    pass driver-unload
    w "sc delete" 60 sc delete wskclient || true

    echo "--- the driver's debug prints"
    grep -E 'debugstr:.*wskclient:' "$SESSION_LOG" | sed 's/^.*wskclient:/  wskclient:/'
}

wait_listen() { # wait_listen PORT: until a local TCP socket listens on PORT (/proc/net/tcp state 0A)
    local hexport; hexport=$(printf '%04X' "$1")
    for _ in $(seq 100); do
        grep -q "0100007F:$hexport 00000000:0000 0A" /proc/net/tcp && return 0; sleep 0.1
    done
    return 1
}

# A random TCP port below Linux's ephemeral range (32768 and up, where the lane's own
# connections get their ports) that no socket in /proc/net/tcp{,6} uses right now.
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$(( 20000 + RANDOM % 12000 ))
        grep -qi "$(printf ':%04X ' "$p")" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return 0; }
    done
    echo $(( 20000 + RANDOM % 12000 ))
}

# A Linux-side socat sink writing every connection it accepts to FILE (appended, so a
# reused socket's second connection lands after the first). Sets SOCAT_PID and SINK_PORT.
# A port taken between the pick and the bind is retried with another (bounded).
start_sink() {
    local file=$1
    for _ in 1 2 3 4 5; do
        rm -f "$file"
        SINK_PORT=$(pick_port)
        socat -u "TCP-LISTEN:$SINK_PORT,bind=127.0.0.1,reuseaddr,fork" "OPEN:$file,creat,append" &
        SOCAT_PID=$!
        wait_listen "$SINK_PORT" && return 0
        kill "$SOCAT_PID" 2>/dev/null || true
        wait "$SOCAT_PID" 2>/dev/null || true
    done
    die "socat sink did not listen (5 ports tried, last $SINK_PORT)"
}

stop_sink() { # stop_sink FILE WANT_BYTES: until FILE has WANT_BYTES (bounded), then end socat
    for _ in $(seq 100); do
        [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && break; sleep 0.1
    done
    kill "$SOCAT_PID" 2>/dev/null || true
    wait "$SOCAT_PID" 2>/dev/null || true
    SOCAT_PID=
}

# The Windows peer of wskctl.exe (issue 7): the Winsock extension functions under Wine 8.0.
wine_peer_test() {
    local payload=$1 n=$2 want; want=$(sha256sum <"$payload" | cut -d' ' -f1)
    local wpayload="Z:${payload//\//\\}"

    echo "--- peer: IOCP + AcceptEx (64 bytes of initial data) + GetAcceptExSockaddrs; the driver connects"
    local serve=$LOGS/peer-serve.txt port
    port=$(pick_port)
    rm -f "$serve" "$serve.err"
    WINEDEBUG=err+all timeout 120 "$WINE" 'C:\wskclient\wskctl.exe' peer serve \
        --listen "127.0.0.1:$port" --initial-bytes 64 --timeout-secs 30 >"$serve" 2>"$serve.err" &
    local serve_pid=$!
    wait_listen "$port" || { cat "$serve" "$serve.err"; die "peer serve did not listen on $port"; }
    wskctl connect-to-peer "$LOGS/peer-connect.txt" connect "127.0.0.1:$port" --file "$wpayload" ||
        die "wskctl connect to the Wine peer"
    wait "$serve_pid" || { cat "$serve" "$serve.err"; die "peer serve failed"; }
    { echo "--- wskctl peer serve"; cat "$serve" "$serve.err"; } >>"$SESSION_LOG"
    cat "$serve"
    local line; line=$(grep '^accepted: ' "$serve") || die "peer serve accepted nothing"
    echo "$line" | grep -q "via AcceptEx+GetAcceptExSockaddrs (getsockname/getpeername agree)" ||
        die "GetAcceptExSockaddrs addresses missing or not equal to getsockname/getpeername"
    # The driver's remote address (OPEN_STREAM's response) is the peer's local address.
    local drv_remote drv_local peer_local peer_remote
    drv_remote=$(grep -Eo ' to [0-9.:]+$' "$LOGS/peer-connect.txt" | awk '{print $2}')
    drv_local=$(grep -Eo 'from [^ ]+' "$LOGS/peer-connect.txt" | awk '{print $2}')
    peer_local=$(echo "$line" | grep -Eo 'local [0-9.:]+' | awk '{print $2}')
    peer_remote=$(echo "$line" | grep -Eo 'remote [0-9.:]+' | awk '{print $2}')
    [ -n "$drv_remote" ] && [ "$drv_remote" = "$peer_local" ] ||
        die "driver's remote address '$drv_remote' != AcceptEx local address '$peer_local'"
    echo "driver remote $drv_remote = AcceptEx local $peer_local; AcceptEx remote $peer_remote"
    if [ "$drv_local" != "(local" ]; then
        [ "$drv_local" = "$peer_remote" ] ||
            die "driver's local address '$drv_local' != AcceptEx remote address '$peer_remote'"
        echo "driver local $drv_local = AcceptEx remote $peer_remote"
    else
        # Wine's netio.sys has no WskGetLocalAddress: the driver cannot tell its local
        # address; the peer's remote must still be a loopback ephemeral address.
        echo "$peer_remote" | grep -Eq '^127\.0\.0\.1:[0-9]+$' || die "AcceptEx remote $peer_remote"
        echo "driver local address unknown (WskGetLocalAddress missing in Wine); AcceptEx remote $peer_remote"
    fi
    echo "$line" | grep -q "initial 64 bytes; received $n bytes sha256 $want" ||
        die "AcceptEx peer: bytes/sha256 differ from the payload"
    pass peer-acceptex-getacceptexsockaddrs-driver-addresses

    echo "--- peer: ConnectEx (4096 initial bytes) + TransmitFile to a Linux socat"
    local got=$OUT/peer-received.bin
    start_sink "$got"
    wskctl connect-ex "$LOGS/peer-connect-ex.txt" peer connect-ex --to "127.0.0.1:$SINK_PORT" \
        --file "$wpayload" --initial 4096 --timeout-secs 30 || die "wskctl peer connect-ex"
    stop_sink "$got" "$n"
    grep -q "sent $n bytes (4096 with ConnectEx) via transmit-file" "$LOGS/peer-connect-ex.txt" ||
        die "connect-ex: unexpected report"
    [ "$(sha256sum <"$got" | cut -d' ' -f1)" = "$want" ] || die "ConnectEx+TransmitFile: bytes differ at the Linux peer"
    echo "ConnectEx+TransmitFile: $n bytes, sha256 equal at the Linux peer"
    pass peer-connectex-transmitfile-bytes-verified

    echo "--- peer: TransmitFile then DisconnectEx(TF_REUSE_SOCKET), reuse attempted"
    start_sink "$got"
    wskctl disconnect-ex "$LOGS/peer-disconnect-ex.txt" peer disconnect-ex --to "127.0.0.1:$SINK_PORT" \
        --file "$wpayload" --timeout-secs 30 || die "wskctl peer disconnect-ex"
    local expect_sha=$want copies=1
    if grep -q 'ending: DisconnectEx(TF_REUSE_SOCKET): reused' "$LOGS/peer-disconnect-ex.txt"; then
        copies=2; expect_sha=$(cat "$payload" "$payload" | sha256sum | cut -d' ' -f1)
    else
        grep -q 'reuse ignored by the platform' "$LOGS/peer-disconnect-ex.txt" || die "disconnect-ex: no reuse verdict"
        SKIPPED+=("DisconnectEx socket reuse: $(grep -Eo 'reuse ignored by the platform.*\)' "$LOGS/peer-disconnect-ex.txt" | head -1)")
    fi
    stop_sink "$got" $((n * copies))
    [ "$(sha256sum <"$got" | cut -d' ' -f1)" = "$expect_sha" ] || die "DisconnectEx: bytes differ at the Linux peer"
    echo "TransmitFile+DisconnectEx: $((n * copies)) bytes ($copies connection(s)), sha256 equal at the Linux peer"
    pass peer-disconnectex-bytes-verified

    echo "--- peer: TransmitPackets"
    start_sink "$got"
    local rc=0
    wskctl transmit-packets "$LOGS/peer-transmit-packets.txt" peer send --transmit-packets \
        --to "127.0.0.1:$SINK_PORT" --file "$wpayload" --timeout-secs 30 || rc=$?
    if [ $rc -eq 0 ]; then
        stop_sink "$got" "$n"
        [ "$(sha256sum <"$got" | cut -d' ' -f1)" = "$want" ] || die "TransmitPackets: bytes differ at the Linux peer"
        pass peer-transmitpackets-bytes-verified
    else
        stop_sink "$got" 0
        # Wine 8.0 does not hand out the TransmitPackets pointer: the lookup fails, nothing
        # was connected or sent.
        local why; why=$(grep -Eo 'WSAIoctl\(SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_TRANSMITPACKETS\): [A-Z_]+ \([0-9]+\)' \
            "$LOGS/peer-transmit-packets.txt.err") || die "TransmitPackets failed for another reason"
        # Wine's own trace of it, when printed: "SIO_GET_EXTENSION_FUNCTION_POINTER {guid}: stub".
        local wine_says; wine_says=$(grep -Eo 'SIO_GET_EXTENSION_FUNCTION_POINTER \{d9689da0-1f90-11d3-9971-00c04f68c876\}: stub' \
            "$LOGS/peer-transmit-packets.txt.err" | head -1 || true)
        SKIPPED+=("TransmitPackets: the provider has none ($why${wine_says:+; Wine: fixme $wine_says})")
    fi
}

wine_bench() {
    echo "--- wskctl.exe bench: the driver (TRANSMIT_FILE, SEND) and TransmitFile to the IOCP/AcceptEx sink"
    wskctl bench "$LOGS/bench.txt" bench --mib "${LANE_BENCH_MIB:-64}" --timeout-secs 60 || die "wskctl bench"
    grep -Eq '^ratio: .* = [0-9.]+$' "$LOGS/bench.txt" && grep -q '^bench: OK' "$LOGS/bench.txt" ||
        die "bench: no verified ratio"
    if grep -Eq '^driver: OPEN_STREAM \+ TRANSMIT_FILE .* skipped ' "$LOGS/bench.txt"; then
        SKIPPED+=("bench TRANSMIT_FILE row: $(grep -E '^driver: OPEN_STREAM \+ TRANSMIT_FILE' "$LOGS/bench.txt" | grep -Eo 'skipped: .*')")
    fi
    pass bench-ratio
}

wine_bench_small() {
    echo "--- wskctl.exe bench --small: SEND / SEND_TO / RECEIVE through the driver vs send / sendto / recv"
    wskctl bench-small "$LOGS/bench-small.txt" bench --small --ops "${LANE_BENCH_SMALL_OPS:-1000}" \
        --rounds 3 --warmup 100 --timeout-secs 60 || die "wskctl bench --small"
    grep -q '^bench: OK' "$LOGS/bench-small.txt" || die "bench --small: not OK"
    local skipped
    skipped=$(grep -E ' skipped +skipped: ' "$LOGS/bench-small.txt" | sed -E 's/ {2,}.*skipped: /: /' || true)
    [ -z "$skipped" ] || SKIPPED+=("bench --small rows: ${skipped//$'\n'/; }")
    pass bench-small-ratios
}

# A Linux peer that accepts one connection on 127.0.0.1:PORT, reads it to the end and prints
# how it ended: "FIN <bytes>" (end of stream) or "RST <bytes>" (connection reset).
end_watcher() { # end_watcher PORT OUTFILE: in the background; sets WATCH_PID
    python3 - "$1" >"$2" 2>&1 <<'PY' &
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
srv.settimeout(60)
conn, _ = srv.accept()
conn.settimeout(60)
n = 0
try:
    while True:
        d = conn.recv(65536)
        if not d:
            print("FIN", n)
            break
        n += len(d)
except ConnectionResetError:
    print("RST", n)
PY
    WATCH_PID=$!
}

# Issue 14: what Wine's netio serves on the server side and at the end of a connection.
wine_server_test() {
    local port rc out
    echo "--- wskctl.exe listen: OPEN_LISTEN (explicit port) + ACCEPT + RECEIVE from a Linux client"
    local lpayload=$OUT/listen-payload.bin; head -c 1048576 /dev/urandom >"$lpayload"
    port=$(pick_port)
    WINEDEBUG=err+all timeout 120 "$WINE" 'C:\wskclient\wskctl.exe' listen "127.0.0.1:$port" \
        >"$LOGS/listen.txt" 2>"$LOGS/listen.txt.err" &
    local wpid=$!
    wait_listen "$port" || { cat "$LOGS/listen.txt" "$LOGS/listen.txt.err"; die "wskctl listen did not listen on $port"; }
    # The client reports its own address, which ACCEPT's remote address must equal.
    local client_addr
    client_addr=$(python3 - "$port" "$lpayload" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
print("%s:%d" % c.getsockname())
c.sendall(open(sys.argv[2], "rb").read())
c.close()
PY
) || die "listen: the Linux client failed"
    rc=0; wait "$wpid" || rc=$?
    { echo "--- wskctl listen (exit $rc)"; cat "$LOGS/listen.txt" "$LOGS/listen.txt.err"; } >>"$SESSION_LOG"
    cat "$LOGS/listen.txt"
    [ $rc -eq 0 ] || { cat "$LOGS/listen.txt.err"; die "wskctl listen failed ($rc)"; }
    grep -qx "listening on 127.0.0.1:$port" "$LOGS/listen.txt" || die "listen: not the address asked for"
    pass listen-explicit-port
    grep -qx "accepted: local 127.0.0.1:$port remote $client_addr" "$LOGS/listen.txt" ||
        die "accept: addresses differ from the Linux client's ($client_addr)"
    pass accept-both-addresses
    grep -qx "received 1048576 bytes sha256 $(sha256sum <"$lpayload" | cut -d' ' -f1) from $client_addr" \
        "$LOGS/listen.txt" || die "listen: bytes received differ"
    pass receive-on-accepted-socket

    echo "--- wskctl.exe listen on port 0 (needs WskGetLocalAddress, a stub in Wine)"
    rc=0; wskctl listen-0 "$LOGS/listen-0.txt" listen 127.0.0.1:0 || rc=$?
    if [ $rc -eq 0 ]; then
        die "listen on port 0 succeeded: Wine serves WskGetLocalAddress now; make this a step"
    fi
    grep -q 'STATUS_NOT_SUPPORTED' "$LOGS/listen-0.txt.err" || die "listen on port 0: not STATUS_NOT_SUPPORTED"
    pass listen-port-0-not-supported
    SKIPPED+=("ephemeral-port listen: OPEN_LISTEN on port 0 answers STATUS_NOT_SUPPORTED (Wine's WskGetLocalAddress is a stub; docs/ioctl.md)")

    echo "--- wskctl.exe recv: OPEN_STREAM + RECEIVE of 2 MB from a Linux socat"
    local rpayload=$OUT/recv-payload.bin; head -c 2000000 /dev/urandom >"$rpayload"
    port=$(pick_port)
    socat -u "OPEN:$rpayload" "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" &
    SOCAT_PID=$!
    wait_listen "$port" || die "socat sender did not listen"
    wskctl recv "$LOGS/recv.txt" recv "127.0.0.1:$port" || die "wskctl recv"
    wait "$SOCAT_PID" || die "socat sender failed"; SOCAT_PID=
    grep -q "^received 2000000 bytes sha256 $(sha256sum <"$rpayload" | cut -d' ' -f1) from 127.0.0.1:$port" \
        "$LOGS/recv.txt" || die "recv: bytes differ"
    pass receive-from-linux-peer

    echo "--- connection ends, as the Linux peer sees them (FIN / RST)"
    port=$(pick_port); end_watcher "$port" "$LOGS/end-close.txt"
    wait_listen "$port" || die "end watcher did not listen"
    wskctl end-close "$LOGS/end-close-wskctl.txt" connect "127.0.0.1:$port" --text "$(head -c 4096 /dev/zero | tr '\0' x)" ||
        die "wskctl connect (close)"
    wait "$WATCH_PID" || die "end watcher failed"
    cat "$LOGS/end-close.txt"
    grep -qx 'FIN 4096' "$LOGS/end-close.txt" || die "CLOSE: the peer did not see 4096 bytes then FIN"
    pass close-fin-at-linux-peer

    port=$(pick_port); end_watcher "$port" "$LOGS/end-abortive.txt"
    wait_listen "$port" || die "end watcher did not listen"
    rc=0; wskctl end-abortive "$LOGS/end-abortive-wskctl.txt" connect "127.0.0.1:$port" --text hello \
        --disconnect abortive || rc=$?
    wait "$WATCH_PID" || die "end watcher failed"
    cat "$LOGS/end-abortive.txt"
    if [ $rc -eq 0 ]; then
        grep -q '^RST' "$LOGS/end-abortive.txt" || die "abortive DISCONNECT: the peer saw no RST"
        pass abortive-disconnect-rst-at-linux-peer
        die "abortive DISCONNECT works under this Wine: add the graceful DISCONNECT step"
    fi
    local why; why=$(grep -Eo 'disconnect \(Abortive\).*STATUS_NOT_IMPLEMENTED[^ ]*( \(0x[0-9A-Fa-f]+\))?' \
        "$LOGS/end-abortive-wskctl.txt.err" | head -1) || die "abortive DISCONNECT failed for another reason"
    grep -qx 'FIN 5' "$LOGS/end-abortive.txt" || die "after the refused DISCONNECT, CLOSE did not end with FIN"
    SKIPPED+=("abortive DISCONNECT (RST): Wine's WskDisconnect is a stub, the driver answers: $why; the CLOSE that followed reached the peer as FIN")

    # Graceful DISCONNECT pends (an asynchronous WskDisconnect); Wine's stub refuses it without
    # completing the IRP, and the request must still complete with that status, not hang.
    port=$(pick_port); end_watcher "$port" "$LOGS/end-graceful.txt"
    wait_listen "$port" || die "end watcher did not listen"
    rc=0; wskctl end-graceful "$LOGS/end-graceful-wskctl.txt" connect "127.0.0.1:$port" --text hello \
        --disconnect graceful || rc=$?
    [ $rc -ne 124 ] || die "graceful DISCONNECT did not complete (wskctl timed out)"
    wait "$WATCH_PID" || die "end watcher failed"
    cat "$LOGS/end-graceful.txt"
    grep -qx 'FIN 5' "$LOGS/end-graceful.txt" || die "graceful DISCONNECT: the peer did not see 5 bytes then FIN"
    if [ $rc -eq 0 ]; then
        pass graceful-disconnect-fin-at-linux-peer
    else
        why=$(grep -Eo 'disconnect \(Graceful\).*STATUS_NOT_IMPLEMENTED[^ ]*( \(0x[0-9A-Fa-f]+\))?' \
            "$LOGS/end-graceful-wskctl.txt.err" | head -1) || die "graceful DISCONNECT failed for another reason"
        pass graceful-disconnect-refusal-completes
        SKIPPED+=("graceful DISCONNECT (FIN by WskDisconnect): Wine's stub refuses it without completing the IRP; the pending request completed with: $why; the CLOSE that followed reached the peer as FIN")
    fi

    echo "--- wskctl.exe echo: ${LANE_ECHO_CLIENTS:-24} concurrent Linux clients, byte-exact"
    local clients=${LANE_ECHO_CLIENTS:-24}
    port=$(pick_port)
    WINEDEBUG=err+all timeout 120 "$WINE" 'C:\wskclient\wskctl.exe' echo "127.0.0.1:$port" --clients "$clients" \
        >"$LOGS/echo.txt" 2>"$LOGS/echo.txt.err" &
    wpid=$!
    wait_listen "$port" || { cat "$LOGS/echo.txt.err"; die "wskctl echo did not listen"; }
    python3 - "$port" "$clients" >"$LOGS/echo-clients.txt" 2>&1 <<'PY' || { cat "$LOGS/echo-clients.txt"; die "echo clients failed"; }
import os, socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
bad = []
def client(i):
    try:
        data = os.urandom(65536 + 4099 * i)
        c = socket.create_connection(("127.0.0.1", port), timeout=60)
        def send():
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send); t.start()
        got = bytearray()
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        t.join(); c.close()
        if bytes(got) != data:
            bad.append("client %d: %d bytes back of %d, differ" % (i, len(got), len(data)))
    except Exception as e:
        bad.append("client %d: %r" % (i, e))
ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
total = sum(65536 + 4099 * i for i in range(n))
print("\n".join(bad) if bad else "echo clients: %d byte-exact, %d bytes each way" % (n, total))
sys.exit(1 if bad else 0)
PY
    rc=0; wait "$wpid" || rc=$?
    { echo "--- wskctl echo (exit $rc)"; cat "$LOGS/echo.txt" "$LOGS/echo.txt.err"; } >>"$SESSION_LOG"
    cat "$LOGS/echo.txt" "$LOGS/echo-clients.txt"
    [ $rc -eq 0 ] || { cat "$LOGS/echo.txt.err"; die "wskctl echo failed ($rc)"; }
    grep -q "^echo: served $clients clients (0 failed)" "$LOGS/echo.txt" || die "echo: not every client served"
    pass echo-concurrent-linux-clients
}

wine_shutdown() {
    [ -n "$SOCAT_PID" ] && kill "$SOCAT_PID" 2>/dev/null || true
    [ -n "${WINEPREFIX:-}" ] || return 0
    "$WINESERVER" -k 2>/dev/null || true
    "$WINESERVER" -w 2>/dev/null || true
    if [ "${LANE_KEEP_PREFIX:-0}" != 1 ] && [ -n "${PREFIX_PARENT:-}" ]; then
        rm -rf "$PREFIX_PARENT"
    fi
    unset WINEPREFIX
}

# ----------------------------------------------------------------------------------- doc
# docs/verification.md holds, between the markers, the list of the Wine steps the lane
# verifies. The lane regenerates that list from what passed and fails if the committed one
# differs; every `wine:<id>` the matrix cites must be one that passed.
BEGIN_MARK='<!-- windows-lane:wine-steps:begin (generated by ci/windows-lane.sh; do not edit) -->'
END_MARK='<!-- windows-lane:wine-steps:end -->'

check_doc() {
    local gen=$OUT/verification-wine-steps.md
    { for id in "${PASSED[@]}"; do echo "- \`wine:$id\`"; done; } >"$gen"
    [ -f "$DOC" ] || die "$DOC missing"
    local committed
    committed=$(awk -v b="$BEGIN_MARK" -v e="$END_MARK" '$0 == e { f = 0 } f { print } $0 == b { f = 1 }' "$DOC")
    if [ "$committed" != "$(cat "$gen")" ]; then
        if [ "${LANE_UPDATE_DOC:-0}" = 1 ]; then
            awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v g="$gen" '
                $0 == b { print; while ((getline l < g) > 0) print l; skip = 1; next }
                $0 == e { skip = 0 } !skip { print }' "$DOC" >"$DOC.new" && mv "$DOC.new" "$DOC"
            echo "updated the generated block of $DOC"
        else
            diff <(echo "$committed") "$gen" || true
            die "docs/verification.md's Wine steps differ from what this run verified (rerun with LANE_UPDATE_DOC=1 and review)"
        fi
    fi
    local cited missing=()
    cited=$(awk -v b="$BEGIN_MARK" -v e="$END_MARK" '$0 == b { f = 1 } !f { print } $0 == e { f = 0 }' "$DOC" |
        grep -Eo 'wine:[a-z0-9-]+' | sort -u | sed 's/^wine://')
    for id in $cited; do
        printf '%s\n' "${PASSED[@]}" | grep -qx "$id" || missing+=("$id")
    done
    [ ${#missing[@]} -eq 0 ] || die "docs/verification.md cites Wine steps this run did not pass: ${missing[*]}"
    echo "docs/verification.md: ${#PASSED[@]} Wine steps match, $(echo "$cited" | wc -w) citations valid"
}

# ---------------------------------------------------------------------------------- main
if [ "${LANE_SKIP_INSTALL:-0}" != 1 ]; then step install install_pkgs; fi
step toolchain locate_toolchain
step build-pecheck build_pecheck
step build-driver build_driver
step build-ntdll-negative build_negative
step pecheck check_pe
step build-wskctl build_wskctl
step wine-boot wine_boot
step wine-system-test wine_system_test
step wine-shutdown wine_shutdown
trap - EXIT
step doc-check check_doc

echo
echo "=== windows-lane summary"
echo "PE checks passed: $OUT/wskclient.sys ($(stat -c %s "$OUT/wskclient.sys") bytes), imports:"
sed -n '/^imports/,/^exports/p' "$LOGS/pecheck-wskclient.txt" | grep '^  ' | tr -d ' ' | paste -sd' ' | fold -s -w 100 | sed 's/^/    /'
echo "negative: ntdll.dll import rejected, tampered checksum rejected"
echo "driver started in Wine: $(grep -o 'WSK registered, provider version [0-9a-f]*' "$SESSION_LOG" | head -1)"
echo "bytes verified at the Linux peer: $(grep -o 'sent [0-9]* bytes in [0-9]* sends' "$LOGS/connect.txt") (sha256 equal)"
echo "connect_fallbacks: $(stat_of connect_fallbacks "$LOGS/stats-1.txt") (WskSocketConnect -> WskSocket+WskBind+WskConnect)"
for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
echo "driver unloaded: DriverUnload ran, WskDeregister returned, service STOPPED"
echo "Wine steps passed: ${PASSED[*]}"
echo "disk: target $(du -sh "$TARGET_ROOT" | cut -f1); / used $(( $(df -B1 --output=used / | tail -1) / 1048576 )) MiB"
printf '%s\n' "${SUMMARY[@]}"
echo "total                    $(secs "$LANE_T0" "$(now)")s"
echo "windows-lane: PASS"
