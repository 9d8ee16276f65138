#!/usr/bin/env bash
# Prints the interpreter `make` builds .venv from (the Makefile's PY unless PY is given).
#
# Debian's own python3.11 comes first when it can make a venv: Debian builds it with
# profile-guided optimisation and link-time optimisation, and links the interpreter
# statically; a CPython compiled from source with default flags (pyenv's, say) has neither.
# On the trading node's bench (bench/bench_node.py) the optimised build spends about 5 to 8%
# less CPU per message (docs/benchmarks.md). Any other python3 works too, only slower.
set -euo pipefail
for candidate in /usr/bin/python3.11 /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] < (3, 11))' \
            >/dev/null 2>&1; then
        echo "$candidate"
        exit 0
    fi
done
echo python3
