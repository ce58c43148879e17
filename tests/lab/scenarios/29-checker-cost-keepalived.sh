#!/bin/sh
# The health-check cost benchmark (checker_cost in keepalived.sh), small enough for the
# suite: keepalived's checker and lvs-director each check the same 20 x 10 real servers
# every second, TCP then HTTP; lvs-director must make every check due, keepalived is
# said to fall behind if it does (the CPU figures are printed, not judged:
# scripts/bench.sh checker runs the full-size comparison).
# lab-timeout: 300
set -eu
. /lab/lib.sh
. /lab/pulse.sh
. /lab/keepalived.sh

cost_lan
checker_cost tcp 20 10 10
checker_cost http 20 10 10
say ok
