#!/bin/sh
# edgewatch agent for routers: POSIX shell for BusyBox systems (OpenWrt), publishing with mosquitto_pub.
#
# Every interval: CPU and memory from /proc, load and uptime, latency and loss with ping; the sample
# (the same contract as `edgewatch agent`, docs/agent.md) is written to a spool directory first and
# removed only after mosquitto_pub has had the broker's PUBACK for it (QoS 1). `seq` is kept in the
# spool directory, so it keeps increasing across restarts and reboots (with the spool on flash).
# The spool is bounded: past EDGEWATCH_AGENT_SPOOL_MAX_SAMPLES the oldest samples are deleted and the
# next sample reports how many in `spool_dropped`. A long-lived mosquitto_pub connection carries the
# retained `online` status and the `offline` last will.
#
# Settings: EDGEWATCH_* environment variables, or a file of VAR=value lines given with -c FILE
# (a shell fragment, read with `.`); see docs/agent.md, "The router agent".
# Usage: edgewatch-agent.sh [-c FILE] [--once]

set -u

CONFIG=""
ONCE=0
while [ $# -gt 0 ]; do
    case "$1" in
        -c) CONFIG="${2:-}"; shift 2 ;;
        --once) ONCE=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "edgewatch-agent: unknown argument $1 (usage: $0 [-c FILE] [--once])" >&2; exit 2 ;;
    esac
done
if [ -n "$CONFIG" ]; then
    if [ ! -r "$CONFIG" ]; then echo "edgewatch-agent: $CONFIG: cannot read the config file" >&2; exit 2; fi
    # shellcheck disable=SC1090
    . "$CONFIG"
fi

die() { echo "edgewatch-agent: configuration error: $*" >&2; exit 2; }
log() { echo "edgewatch-agent: $*" >&2; }

DEVICE_ID="${EDGEWATCH_DEVICE_ID:-$(cat /proc/sys/kernel/hostname 2>/dev/null || echo router)}"
DEVICE_CLASS="${EDGEWATCH_DEVICE_CLASS:-router}"
INTERVAL="${EDGEWATCH_AGENT_INTERVAL:-10}"
DATA_DIR="${EDGEWATCH_DATA_DIR:-/var/lib/edgewatch}"
SPOOL_MAX="${EDGEWATCH_AGENT_SPOOL_MAX_SAMPLES:-2000}"
BATCH="${EDGEWATCH_AGENT_PUBLISH_BATCH:-50}"
PROBE_COUNT="${EDGEWATCH_AGENT_PROBE_COUNT:-3}"
PROBE_TIMEOUT="${EDGEWATCH_AGENT_PROBE_TIMEOUT:-1}"
URL="${EDGEWATCH_MQTT_URL:-mqtt://127.0.0.1:1883}"
KEEPALIVE="${EDGEWATCH_MQTT_KEEPALIVE:-60}"

case "$DEVICE_ID" in
    ''|*[!A-Za-z0-9._-]*) die "EDGEWATCH_DEVICE_ID must be 1-64 characters of A-Za-z0-9._-, got '$DEVICE_ID'" ;;
esac
[ ${#DEVICE_ID} -le 64 ] || die "EDGEWATCH_DEVICE_ID is longer than 64 characters"
case "$DEVICE_CLASS" in gateway|router) ;; *) die "EDGEWATCH_DEVICE_CLASS must be gateway or router" ;; esac
case "$INTERVAL" in ''|*[!0-9.]*|*.*.*) die "EDGEWATCH_AGENT_INTERVAL must be a number of seconds, got '$INTERVAL'" ;; esac
for pair in "EDGEWATCH_AGENT_SPOOL_MAX_SAMPLES=$SPOOL_MAX" "EDGEWATCH_AGENT_PUBLISH_BATCH=$BATCH" \
            "EDGEWATCH_AGENT_PROBE_COUNT=$PROBE_COUNT" "EDGEWATCH_AGENT_PROBE_TIMEOUT=$PROBE_TIMEOUT" \
            "EDGEWATCH_MQTT_KEEPALIVE=$KEEPALIVE"; do
    case "${pair#*=}" in ''|*[!0-9]*|0) die "${pair%%=*} must be a whole number above 0, got '${pair#*=}'" ;; esac
done

case "$URL" in
    mqtt://*) TLS=0; rest="${URL#mqtt://}"; PORT=1883 ;;
    mqtts://*) TLS=1; rest="${URL#mqtts://}"; PORT=8883 ;;
    *) die "EDGEWATCH_MQTT_URL must start with mqtt:// or mqtts://, got '$URL'" ;;
esac
rest="${rest%/}"
HOST="${rest%:*}"
[ "$HOST" != "$rest" ] && PORT="${rest##*:}"
case "$PORT" in ''|*[!0-9]*) die "EDGEWATCH_MQTT_URL has an invalid port: '$URL'" ;; esac
[ -n "$HOST" ] || die "EDGEWATCH_MQTT_URL has no host: '$URL'"
PING_TARGET="${EDGEWATCH_AGENT_PING_TARGET-$HOST}"

SPOOL="$DATA_DIR/spool"
QUEUE="$SPOOL/queue"
mkdir -p "$QUEUE" || { echo "edgewatch-agent: EDGEWATCH_DATA_DIR: cannot create $QUEUE" >&2; exit 1; }
chmod 700 "$DATA_DIR" "$SPOOL" 2>/dev/null

# mosquitto_pub reads its options from $XDG_CONFIG_HOME/mosquitto_pub: the credentials go there
# (a private file), not on the command line where `ps` would show them.
MQTT_CONF="$SPOOL/mqtt"
mkdir -p "$MQTT_CONF" && chmod 700 "$MQTT_CONF"
PASSWORD="${EDGEWATCH_MQTT_PASSWORD:-}"
if [ -z "$PASSWORD" ] && [ -n "${EDGEWATCH_MQTT_PASSWORD_FILE:-}" ]; then
    PASSWORD="$(cat "$EDGEWATCH_MQTT_PASSWORD_FILE")" || die "EDGEWATCH_MQTT_PASSWORD_FILE: cannot read it"
fi
(
    umask 077
    : > "$MQTT_CONF/mosquitto_pub"
    [ -n "${EDGEWATCH_MQTT_USERNAME:-}" ] && echo "-u $EDGEWATCH_MQTT_USERNAME" >> "$MQTT_CONF/mosquitto_pub"
    [ -n "$PASSWORD" ] && echo "-P $PASSWORD" >> "$MQTT_CONF/mosquitto_pub"
    if [ "$TLS" = 1 ]; then
        if [ -n "${EDGEWATCH_MQTT_CA_FILE:-}" ]; then echo "--cafile $EDGEWATCH_MQTT_CA_FILE"
        else echo "--capath /etc/ssl/certs"; fi >> "$MQTT_CONF/mosquitto_pub"
    fi
)

TELEMETRY_TOPIC="edgewatch/v1/$DEVICE_ID/telemetry"
STATUS_TOPIC="edgewatch/v1/$DEVICE_ID/status"

# The installation's identity, made once: a new one tells the collector that seq restarted.
if [ ! -s "$SPOOL/instance" ]; then
    od -An -N8 -tx1 /dev/urandom | tr -d ' \n' > "$SPOOL/instance.tmp" && mv "$SPOOL/instance.tmp" "$SPOOL/instance"
fi
INSTANCE="$(cat "$SPOOL/instance")"
SEQ="$(cat "$SPOOL/seq" 2>/dev/null || echo 0)"
case "$SEQ" in ''|*[!0-9]*) log "$SPOOL/seq is damaged; starting a new instance"; SEQ=0
    od -An -N8 -tx1 /dev/urandom | tr -d ' \n' > "$SPOOL/instance"; INSTANCE="$(cat "$SPOOL/instance")" ;;
esac

pub() {  # mosquitto_pub with the broker, credentials and TLS settings; extra arguments follow
    XDG_CONFIG_HOME="$MQTT_CONF" mosquitto_pub -h "$HOST" -p "$PORT" -V mqttv311 -k "$KEEPALIVE" "$@"
}

now() { date +%s; }

status_json() {  # state [reason]
    reason=""
    [ -n "${2:-}" ] && reason=",\"reason\":\"$2\""
    printf '{"state":"%s","device_id":"%s","instance":"%s","interval_s":%s,"version":"sh-1"%s}' \
        "$1" "$DEVICE_ID" "$INSTANCE" "$INTERVAL" "$reason"
}

# -- measuring ---------------------------------------------------------------------------------

CPU_TOTAL=""
CPU_IDLE=""
cpu_percent() {  # busy share of the CPU time since the previous call (idle and I/O wait are not busy)
    read -r _ c_user c_nice c_sys c_idle c_wait c_irq c_sirq c_steal _ < /proc/stat
    total=$((c_user + c_nice + c_sys + c_idle + c_wait + c_irq + c_sirq + ${c_steal:-0}))
    idle=$((c_idle + c_wait))
    if [ -n "$CPU_TOTAL" ] && [ "$total" -gt "$CPU_TOTAL" ]; then
        awk -v t=$((total - CPU_TOTAL)) -v i=$((idle - CPU_IDLE)) 'BEGIN { printf "%.1f", 100 * (t - i) / t }'
    fi
    CPU_TOTAL=$total
    CPU_IDLE=$idle
}

mem_percent() {  # memory in use, excluding what the kernel can reclaim (MemAvailable, or free + caches)
    awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2; has=1} /^MemFree:/ {f=$2} /^Buffers:/ {b=$2} /^Cached:/ {c=$2}
         END { if (!has) a = f + b + c; if (t > 0) printf "%.1f", 100 * (t - a) / t }' /proc/meminfo
}

host_metrics() {  # ,"load1_per_core":…,"uptime_s":…
    awk -v cores="$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)" '
        FILENAME == "/proc/loadavg" { if (cores < 1) cores = 1; printf ",\"load1_per_core\":%.3f", $1 / cores }
        FILENAME == "/proc/uptime" { printf ",\"uptime_s\":%.2f", $1 }' /proc/loadavg /proc/uptime
}

latency_metrics() {  # ,"latency_ms":…,"packet_loss_percent":… from ping (iputils' or BusyBox's output)
    [ -n "$PING_TARGET" ] || return 0
    ping -c "$PROBE_COUNT" -W "$PROBE_TIMEOUT" -w $((PROBE_COUNT * PROBE_TIMEOUT + 1)) "$PING_TARGET" 2>/dev/null | awk '
        / packets transmitted/ { sent = $1; got = $4 }
        /min\/avg\/max/ { split($0, parts, "="); split(parts[2], v, "/"); avg = v[2] + 0; have = 1 }
        END {
            if (sent > 0) {
                if (have) printf ",\"latency_ms\":%.3f", avg
                printf ",\"packet_loss_percent\":%.1f", 100 * (sent - got) / sent
            }
        }'
}

# -- the spool ---------------------------------------------------------------------------------

queued() { ls "$QUEUE" | wc -l; }

store_sample() {  # measure, then write the sample under the next seq: seq first, so it is never reused
    ts="$(now)"
    cpu="$(cpu_percent)"
    mem="$(mem_percent)"
    metrics=""
    [ -n "$cpu" ] && metrics="$metrics,\"cpu_percent\":$cpu"
    [ -n "$mem" ] && metrics="$metrics,\"mem_percent\":$mem"
    metrics="$metrics$(host_metrics)$(latency_metrics),\"spool_backlog\":$(queued)"
    bound_spool
    SEQ=$((SEQ + 1))
    echo "$SEQ" > "$SPOOL/seq.tmp" && mv "$SPOOL/seq.tmp" "$SPOOL/seq" || { log "cannot write $SPOOL/seq"; return 1; }
    dropped="$(cat "$SPOOL/dropped" 2>/dev/null || echo 0)"
    extra=""
    [ "${dropped:-0}" -gt 0 ] 2>/dev/null && extra=",\"spool_dropped\":$dropped"
    name="$(printf '%012d' "$SEQ")"
    printf '{"v":1,"device_id":"%s","seq":%s,"ts":%s,"metrics":{%s},"instance":"%s","device_class":"%s","interval_s":%s%s}\n' \
        "$DEVICE_ID" "$SEQ" "$ts" "${metrics#,}" "$INSTANCE" "$DEVICE_CLASS" "$INTERVAL" "$extra" \
        > "$QUEUE/.$name" && mv "$QUEUE/.$name" "$QUEUE/$name" || { log "cannot write the spool $QUEUE"; return 1; }
    [ -n "$extra" ] && rm -f "$SPOOL/dropped"
    return 0
}

bound_spool() {  # room for one more within SPOOL_MAX: the oldest go, and the sample stored next says how many
    over=$(( $(queued) + 1 - SPOOL_MAX ))
    [ "$over" -gt 0 ] || return 0
    for old in $(ls "$QUEUE" | head -n "$over"); do
        # A dropped sample's own drop report is passed on too, so no drop goes unreported.
        carried="$(sed -n 's/.*"spool_dropped":\([0-9]*\).*/\1/p' "$QUEUE/$old")"
        rm -f "$QUEUE/$old"
        echo $(( $(cat "$SPOOL/dropped" 2>/dev/null || echo 0) + 1 + ${carried:-0} )) > "$SPOOL/dropped"
    done
    log "spool full ($SPOOL_MAX samples): dropped the $over oldest"
}

FAILING=0
flush() {  # publish the spool oldest first, in batches; a batch is removed once mosquitto_pub had every PUBACK
    while [ "$STOP" = 0 ]; do
        batch="$(ls "$QUEUE" | head -n "$BATCH")"
        [ -n "$batch" ] || return 0
        # mosquitto_pub -l reconnects by itself and would wait for ever: the timeout bounds a batch.
        if (cd "$QUEUE" && cat $batch 2>/dev/null) | timeout $((BATCH / 5 + 10)) env XDG_CONFIG_HOME="$MQTT_CONF" \
                mosquitto_pub -h "$HOST" -p "$PORT" -V mqttv311 -q 1 -l -t "$TELEMETRY_TOPIC" \
                -i "edgewatch-sh-$DEVICE_ID" 2>/dev/null; then
            (cd "$QUEUE" && rm -f $batch)
            if [ "$FAILING" = 1 ]; then
                log "broker $HOST:$PORT reachable again; sending the spool ($(queued) samples waiting)"
                FAILING=0
                announce  # the last will may have been published meanwhile
            fi
        else
            [ "$FAILING" = 1 ] || log "cannot publish to $HOST:$PORT; samples stay in $QUEUE"
            FAILING=1
            return 1
        fi
    done
}

# -- status: one long-lived connection that holds the last will ---------------------------------

PRESENCE_PID=""
FIFO="$SPOOL/status.fifo"
start_presence() {
    rm -f "$FIFO"
    mkfifo -m 600 "$FIFO" || { log "cannot make $FIFO: no online/offline status"; return 1; }
    pub -q 1 -r -l -t "$STATUS_TOPIC" -i "edgewatch-sh-$DEVICE_ID-status" \
        --will-topic "$STATUS_TOPIC" --will-qos 1 --will-retain \
        --will-payload "$(status_json offline 'connection lost')" < "$FIFO" 2>/dev/null &
    PRESENCE_PID=$!
    exec 3> "$FIFO"
    announce
}

announce() {
    [ -n "$PRESENCE_PID" ] && { status_json online; echo; } >&3 2>/dev/null
}

stop_presence() {  # a clean DISCONNECT: the broker drops the last will
    [ -n "$PRESENCE_PID" ] || return 0
    { status_json offline stopped; echo; } >&3 2>/dev/null
    exec 3>&-
    waited=0
    while kill -0 "$PRESENCE_PID" 2>/dev/null && [ $waited -lt 30 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill "$PRESENCE_PID" 2>/dev/null
    rm -f "$FIFO"
}

# -- the loop -----------------------------------------------------------------------------------

STOP=0
trap 'STOP=1' TERM INT HUP
trap '' PIPE  # the status connection may have gone: a write to it fails, and must not end the agent

if [ "$ONCE" = 1 ]; then  # measure once (CPU over half a second) and print, without broker or spool
    cpu_percent > /dev/null; sleep 0.5
    cpu="$(cpu_percent)"; mem="$(mem_percent)"
    printf '{"v":1,"device_id":"%s","seq":%s,"ts":%s,"metrics":{"cpu_percent":%s,"mem_percent":%s%s%s}}\n' \
        "$DEVICE_ID" "$SEQ" "$(now)" "${cpu:-null}" "${mem:-null}" "$(host_metrics)" "$(latency_metrics)"
    exit 0
fi

log "device $DEVICE_ID, every $INTERVAL s, broker $HOST:$PORT, spool $QUEUE ($(queued) waiting, next seq $((SEQ + 1)))"
start_presence
cpu_percent > /dev/null
uptime_now() { cut -d' ' -f1 /proc/uptime; }
next="$(awk -v u="$(uptime_now)" 'BEGIN { print u + 1 }')"
while [ "$STOP" = 0 ]; do
    left="$(awk -v n="$next" -v u="$(uptime_now)" 'BEGIN { d = n - u; print (d > 0 ? d : 0) }')"
    sleep "$left" & wait $! 2>/dev/null
    [ "$STOP" = 0 ] || break
    store_sample
    # On the grid start + k x interval; slots missed while busy are skipped, not made up.
    next="$(awk -v n="$next" -v i="$INTERVAL" -v u="$(uptime_now)" 'BEGIN { n += i; while (n <= u) n += i; print n }')"
    flush
    if [ -n "$PRESENCE_PID" ] && ! kill -0 "$PRESENCE_PID" 2>/dev/null; then
        exec 3>&-
        start_presence
    fi
done
log "stopping; $(queued) samples kept in $QUEUE for the next start"
stop_presence
exit 0
