#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time over a copy of
# its committed corpus (fuzz/corpus/<target>/), so the corpus in the checkout never grows.
# Fails when any target crashes, panics, leaks past libFuzzer's memory limit or takes longer
# than 10 s on one input; the input is kept in fuzz/artifacts/<target>/ (not committed) and
# `cargo fuzz run --sanitizer none --codegen-units 16 <target> <file>` (in fuzz/) replays it.
# Usage: scripts/fuzz.sh [seconds-per-target]   (default 20)
#
# Stable Rust: `--sanitizer none` needs no nightly flag (ASan's `-Zsanitizer` would, through
# RUSTC_BOOTSTRAP=1). The code under test is safe Rust, so the bugs to find are panics,
# arithmetic overflow (debug assertions are on) and runaway time or memory, which libFuzzer
# sees without ASan (whose instrumentation would slow both the build and the runs).
# 16 codegen units and fuzz/Cargo.toml's profile keep the rebuild after a change to a crate
# short; the first build of the dependencies takes a quarter of an hour on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
case $seconds in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target]" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

cd fuzz
cargo fuzz build --sanitizer none --codegen-units 16
targets=$(cargo fuzz list)
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $targets; do
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target" "$work/tmp/$target"
    cp -R "corpus/$target/." "$work/corpus/$target/"
    log="$work/$target.log"
    # TMPDIR: the dashboard target's SQLite database goes with the rest.
    if TMPDIR="$work/tmp/$target" "$bin/$target" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$target/" \
        "$work/corpus/$target" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz $target: ${runs:-?} runs in ${seconds} s, no crash"
    else
        failed+=("$target")
        echo "fuzz $target: FAILED" >&2
        { grep -v '^#' "$log" || true; } | tail -40 >&2
        mkdir -p "artifacts/$target"
        cp -R "$work/artifacts/$target/." "artifacts/$target/"
        for input in "$work/artifacts/$target"/*; do
            [ -e "$input" ] || continue
            echo "input kept as fuzz/artifacts/$target/$(basename "$input"), base64: $(base64 -w0 "$input" | cut -c1-2000)" >&2
        done
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets failed: ${failed[*]}" >&2
    exit 1
fi
