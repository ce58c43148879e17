# shellcheck shell=sh
# lvs.cf writing and applying for the lvs-director scenarios (sourced after lib.sh).
#   cf_start NETWORK                    global settings (nat|direct|tunnel)
#   cf_virtual NAME ADDR PORT SCHED [KEY=VALUE...]
#   cf_server NAME ADDR [KEY=VALUE...]
#   cf_end                              closes the virtual server
#   director_apply [ARGS...]            `lvs-director ipvs apply` of $CF in $DIR
CF=$LAB_TMP/lvs.cf
STATE=$LAB_TMP/state
cf_start() {
    mkdir -p "$LAB_TMP"
    {
        echo "serial_no = 1"
        echo "primary = $DIR_IP"
        echo "service = lvs"
        echo "network = $1"
        [ "$1" != nat ] || echo "nat_router = 10.0.2.1 eth1"
    } >"$CF"
}
_cf_kv() {
    local kv
    for kv in "$@"; do
        printf '%s%s = %s\n' "$_cf_indent" "${kv%%=*}" "${kv#*=}"
    done >>"$CF"
}
cf_virtual() {
    printf 'virtual %s {\n    active = 1\n    address = %s eth0:1\n    port = %s\n    scheduler = %s\n' \
        "$1" "$2" "$3" "$4" >>"$CF"
    shift 4
    _cf_indent="    " _cf_kv "$@"
}
cf_server() {
    printf '    server %s {\n        address = %s\n        active = 1\n' "$1" "$2" >>"$CF"
    shift 2
    _cf_indent="        " _cf_kv "$@"
    echo "    }" >>"$CF"
}
cf_end() { echo "}" >>"$CF"; }
director_apply() {
    nsrun "$DIR" lvs-director ipvs apply --state-dir "$STATE" "$@" "$CF"
}
