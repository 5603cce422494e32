#!/usr/bin/env bash
# Check that 3DGS PLY files open in a standard splat tool: PlayCanvas splat-transform (npm).
#
#   scripts/check_ply_compat.sh FILE.ply [FILE.ply ...]
#
# Installs @playcanvas/splat-transform once (scripts/install_splat_transform.sh), then converts
# every file to CSV with it and checks that the CSV has one row per Gaussian of the PLY header.
# Exit status: 0 when every file reads back, 1 otherwise, 2 on bad usage or a failed install.
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 FILE.ply [FILE.ply ...]" >&2
    exit 2
fi
tool="$(bash "$(dirname "$0")/install_splat_transform.sh")" || exit 2
echo "using splat-transform $("$tool" --version 2>&1 | tail -n 1)" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for ply in "$@"; do
    if [ ! -f "$ply" ]; then
        echo "FAIL $ply: file not found"
        status=1
        continue
    fi
    expected="$(LC_ALL=C head -c 4096 "$ply" | LC_ALL=C grep -a -m1 '^element vertex ' | awk '{print $3}')"
    if [ "$expected" = "0" ]; then
        echo "SKIP $ply: no Gaussians (splat-transform refuses to write an empty splat)"
        continue
    fi
    out="$work/out.csv"
    rm -f "$out"
    if ! log="$("$tool" "$ply" "$out" 2>&1)"; then
        echo "FAIL $ply: splat-transform exited with an error:"
        echo "$log" | tail -n 5
        status=1
        continue
    fi
    rows=$(( $(wc -l < "$out") - 1 ))
    if [ "$rows" != "$expected" ]; then
        echo "FAIL $ply: splat-transform read $rows Gaussians, the header says $expected"
        status=1
    else
        echo "OK   $ply: $rows Gaussians"
    fi
done
exit "$status"
