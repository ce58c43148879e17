#!/bin/sh
# /init of the lab VM (PID 1, busybox sh). Sets up the least of a system, runs every
# scenario in /lab/scenarios in name order and reports to tests/lab/run.sh through the
# console, in lines the host parses:
#     LAB-BOOT <uptime> <kernel>        /init started
#     LAB-START <name>                  a scenario starts
#     LAB-OUT <name> | <line>           its output (after it ended), then its kernel
#                                       messages (notice and worse) and the harness's notes
#     LAB-RESULT <name> PASS|FAIL       exactly one per scenario
#     LAB-DONE                          all done; the VM powers off next
# /lab/config (written by run.sh) sets LAB_ONLY (names, empty = all), LAB_TIMEOUT
# (seconds per scenario) and LAB_MODULES (loaded before the first scenario).

export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
IP=/usr/sbin/ip

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel found no /dev/console in the initramfs when it started us.
exec </dev/null >/dev/console 2>&1
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /var/lib
# Only emergencies go to the console, or kernel messages could tear our marker lines;
# each scenario's share of the kernel log is printed with its output instead.
echo 1 >/proc/sys/kernel/printk

say() { printf '%s\n' "$*"; }
# busybox sh would run its own modprobe applet rather than kmod's.
modprobe() { /sbin/modprobe "$@"; }

# Centiseconds since boot, from /proc/uptime ("12.34 …"); builtins only.
now_cs() {
    local up s f
    read -r up _ </proc/uptime
    s=${up%.*} f=${up#*.}
    f=${f#0}
    echo $((s * 100 + f))
}

finish() {
    say "LAB-DONE"
    sync
    echo o >/proc/sysrq-trigger
    sleep 5
    poweroff -f
}

LAB_ONLY= LAB_TIMEOUT=60 LAB_MODULES=
. /lab/config

# The firmware leaves escape sequences without a newline: start a clean line.
say ""
say "LAB-BOOT $(cut -d' ' -f1 /proc/uptime) $(uname -r)"
hostname lab
"$IP" link set lo up
for m in $LAB_MODULES; do
    modprobe "$m" || say "LAB-WARN modprobe $m failed"
done
dmesg -c >/dev/null

# scan : sets $left to the live processes other than init and kernel threads. Builtins
# only, so that the scan does not see itself.
scan() {
    local d pid line rest
    left=
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" != 1 ] && [ "$pid" != 2 ] || continue
        read -r line <"$d/stat" 2>/dev/null || continue
        rest=${line##*) }
        # shellcheck disable=SC2086
        set -- $rest
        # $1 state, $2 parent: kernel threads are children of kthreadd (2); zombies
        # are already dead and only wait to be reaped.
        [ "$2" != 2 ] && [ "$1" != Z ] || continue
        left="$left $pid"
    done
}

# sweep : lists what a scenario left behind (processes, named namespaces, IPVS services
# in the VM's own namespace), removes it, and says so: a scenario must clean up after
# itself, even when it fails.
sweep() {
    local i=0 pid d found=
    scan
    # A process may need a moment to end by itself (busybox timeout's watcher looks
    # every second): 1.5 s of grace before it counts as left behind.
    while [ -n "$left" ] && [ "$i" -lt 15 ]; do
        sleep 0.1
        i=$((i + 1))
        scan
    done
    for pid in $left; do
        say "left behind: process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        found=1
    done
    [ -z "$found" ] || kill -9 -1 2>/dev/null
    for d in /run/netns/*; do
        [ -e "$d" ] || continue
        say "left behind: namespace ${d#/run/netns/}"
        "$IP" netns del "${d#/run/netns/}"
        found=1
    done
    if [ -r /proc/net/ip_vs ] && [ "$(wc -l </proc/net/ip_vs)" -gt 3 ]; then
        say "left behind: IPVS services in the VM's own namespace"
        ipvsadm -C
        found=1
    fi
    [ -z "$found" ]
}

# run_one NAME FILE : runs one scenario in its own session (so that a timeout can kill
# it with everything it started), prints its report.
run_one() {
    local name=$1 file=$2 dir pid wd rc t0 t1 limit verdict=PASS
    dir=/tmp/lab/$name
    mkdir -p "$dir"
    say "LAB-START $name"
    t0=$(now_cs)
    cd "$dir" || return
    LAB_SCENARIO=$name LAB_TMP=$dir setsid sh "$file" >"$dir.out" 2>&1 </dev/null &
    pid=$!
    # TERM first so that the scenario's EXIT trap cleans up; KILL if it does not end.
    # A scenario may ask for longer with a "# lab-timeout: SECONDS" line.
    limit=$(sed -n 's/^# lab-timeout: *\([0-9][0-9]*\)$/\1/p' "$file")
    limit=${limit:-$LAB_TIMEOUT}
    setsid sh -c "sleep $limit; : >'$dir.timeout'; kill -TERM -$pid; sleep 5; kill -KILL -$pid" \
        >/dev/null 2>&1 &
    wd=$!
    rc=0
    wait "$pid" || rc=$?
    # The group, and the pid in case the watchdog has not called setsid yet.
    kill -KILL -"$wd" "$wd" 2>/dev/null
    wait "$wd" 2>/dev/null
    t1=$(now_cs)
    cd /
    [ "$rc" -eq 0 ] || verdict=FAIL
    {
        cat "$dir.out"
        # Notices and worse: the info level is mostly bridge ports going up and down.
        dmesg -c -r | sed -n 's/^<[0-5]>/kernel: /p'
        if [ -e "$dir.timeout" ]; then
            say "lab: TIMED OUT after ${limit}s (killed)"
            verdict=FAIL
        fi
        sweep || verdict=FAIL
        [ "$rc" -eq 0 ] || say "lab: exit status $rc"
        d=$((t1 - t0))
        say "lab: took $((d / 100)).$((d / 10 % 10))$((d % 10)) s (VM clock)"
    } >"$dir.report" 2>&1
    # One write per line from sed, and nothing else writes to the console now.
    sed "s/^/LAB-OUT $name | /" "$dir.report"
    say "LAB-RESULT $name $verdict"
}

for file in /lab/scenarios/*.sh; do
    [ -e "$file" ] || continue
    name=${file##*/}
    name=${name%.sh}
    if [ -n "$LAB_ONLY" ]; then
        case " $LAB_ONLY " in
        *" $name "*) ;;
        *) continue ;;
        esac
    fi
    run_one "$name" "$file"
done
finish
