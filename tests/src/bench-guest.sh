#!/bin/sh
# The bench's guest side (in the DPDK image variant only): runs one testpmd
# at a time as the host asks on the third serial port (/dev/ttyS2), one
# command a line:
#   dpdk ARGS...   start DPDK's testpmd (stdin a FIFO: a newline stops it)
#   ours ARGS...   start the project's testpmd (SIGINT stops it)
#   stop           stop the running one, wait for it (SIGKILL after 20 s:
#                  a testpmd that does not stop must not hang the loop),
#                  print its status (137 when killed)
#   quit           leave
# Each step answers on the console with an @@bench- line the host waits for.
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
# EAL wants its runtime dir under /var/run, and refuses to load plugins
# from a directory with a world-writable ancestor (the initramfs root is 0777).
mkdir -p /var/run /run
chmod 755 /
ctl=/dev/ttyS2
stty -F "$ctl" raw -echo 2>/dev/null
exec 3<"$ctl"
rm -f /tmp/dpdk-in && mkfifo /tmp/dpdk-in
exec 4<>/tmp/dpdk-in
pid=
kind=
echo "@@bench-ready"
while IFS= read -r line <&3; do
    line="$(echo "$line" | tr -d '\r')"
    verb="${line%% *}"
    args="${line#"$verb"}"
    case "$verb" in
        dpdk)
            /usr/bin/dpdk-testpmd $args <&4 &
            pid=$!; kind=dpdk
            echo "@@bench-started dpdk $pid"
            ;;
        ours)
            testpmd $args </dev/null &
            pid=$!; kind=ours
            echo "@@bench-started ours $pid"
            ;;
        stop)
            if [ -n "$pid" ]; then
                if [ "$kind" = dpdk ]; then echo >&4; else kill -INT "$pid"; fi
                n=0
                while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 20 ]; do
                    sleep 1; n=$((n + 1))
                done
                if kill -0 "$pid" 2>/dev/null; then
                    echo "@@bench-killed $kind $pid"
                    kill -KILL "$pid"
                fi
                wait "$pid"
                rc=$?
            else
                rc=255
            fi
            pid=
            echo "@@bench-stopped $rc"
            ;;
        quit)
            break
            ;;
        "")
            ;;
        *)
            echo "@@bench-error unknown command: $verb"
            ;;
    esac
done
echo "@@bench-quit"
