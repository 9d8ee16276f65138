#!/usr/bin/env bash
# Runs every cargo-fuzz target of tradecore for a bounded time.
#
#   fuzz/run.sh                  # each target FUZZ_SECONDS (default 60) seconds
#   FUZZ_SECONDS=600 fuzz/run.sh codec_decode book_vs_reference   # chosen targets
#
# Needs only the stable toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
# sancov passes), which stable rustc accepts under RUSTC_BOOTSTRAP=1 (the escape hatch the
# compiler's own build uses). The toolchain is pinned to `stable` for this script so a
# nightly that happens to be installed is never picked up. cargo-fuzz itself is installed
# with `cargo install cargo-fuzz --locked` when missing.
#
# Corpora live in fuzz/corpus/<target> (kept between runs, git-ignored); crashes land in
# fuzz/artifacts/<target>/ and make this script exit non-zero after all targets ran.
# Reproduce one with: RUSTC_BOOTSTRAP=1 cargo +stable fuzz run <target> <artifact file>
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

seconds="${FUZZ_SECONDS:-60}"
export RUSTUP_TOOLCHAIN="${FUZZ_TOOLCHAIN:-stable}"
export RUSTC_BOOTSTRAP=1
# libFuzzer runs one process; keep the build from taking every core on a shared machine.
export CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzz target $t for ${seconds}s =="
    # -rss_limit_mb: the journal target maps files; -max_len keeps inputs small enough to
    # run fast; -timeout flags a single input that hangs for 10 s.
    if ! cargo fuzz run --release "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: FAILED targets: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz/run.sh: all ${#targets[@]} targets ran ${seconds}s each without a finding"
