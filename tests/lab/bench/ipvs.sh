#!/bin/sh
# The IPVS programming benchmark (benches/ipvs.rs) in a namespace of its own.
set -eu
. /lab/lib.sh
lab_ns bench
nsrun bench ipvs-bench --bench
