#!/bin/sh
# The telemetry test's guest side (in the telemetry image variant only):
#   telemetry-guest N PREFIX PCI0 PCI1
# runs our testpmd at the prompt (io forwarding between the two ports, the
# telemetry socket under /var/run/dpdk/PREFIX), waits until DPDK's
# dpdk-telemetry.py sees port 1 send N frames (the host sends them once it
# sees "Forwarding started"), then queries it with dpdk-telemetry.py and
# with a raw client (malformed and oversized commands), asks testpmd for
# its own counters and quits; then runs testpmd with --no-telemetry and
# watches that no socket appears. Every answer is printed between @@ marker
# lines for the host to compare.
n="$1"; prefix="$2"; pci0="$3"; pci1="$4"
sock="/var/run/dpdk/$prefix/dpdk_telemetry.v2"
tel() { /usr/bin/python3 /usr/bin/dpdk-telemetry.py -f "$prefix"; }
mkdir -p /var/run
rm -f /tmp/tp-in && mkfifo /tmp/tp-in
testpmd -i -l 0-1 -a "$pci0" -a "$pci1" --file-prefix="$prefix" </tmp/tp-in &
pid=$!
exec 3>/tmp/tp-in
i=0
while [ ! -S "$sock" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -S "$sock" ] && echo "@@tel-socket $sock"
echo start >&3
# Each poll is a new client: several clients in turn.
i=0
until echo /ethdev/stats,1 | tel | grep -q "\"opackets\": $n,"; do
    i=$((i + 1))
    [ $i -ge 120 ] && { echo "@@tel-timeout"; break; }
    sleep 0.5
done
echo "@@tel-polls $i"
echo "@@tel-begin"
printf '%s\n' /ethdev/list /info / /mempool/list /ethdev/stats,0 /ethdev/stats,1 \
    /ethdev/xstats,0 /ethdev/link_status,0 /ethdev/info,0 /mempool/info,testpmd \
    /netmem/stats,testpmd /help,/ethdev/stats /ethdev/stats,7 /ethdev/stats,x /bad | tel
echo "@@tel-end"
cat > /tmp/raw.py <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
print("@@raw " + s.recv(16384).decode())
for m in [b"\xff\xfe\"x", b",,,", b"/" + b"e" * 5000, b"/ethdev/stats,0" + b"9" * 3000,
          b"/ethdev/stats,0"]:
    s.send(m)
    print("@@raw " + s.recv(16384).decode(errors="replace"))
EOF
/usr/bin/python3 /tmp/raw.py "$sock"
echo "@@raw-rc $?"
# The app still answers a new client after all that.
echo "@@after $(echo /ethdev/stats,0 | tel)"
echo "show port stats all" >&3
echo stop >&3
echo quit >&3
exec 3>&-
wait $pid
echo "@@testpmd-rc $?"
[ -e "$sock" ] && echo "@@tel-socket-left"
# --no-telemetry: no socket while it runs.
testpmd -l 0-1 -a "$pci0" -a "$pci1" --file-prefix="$prefix" --no-telemetry \
    --duration=3 </dev/null >/tmp/notel.out 2>&1 &
pid=$!
seen=0
while kill -0 $pid 2>/dev/null; do
    [ -e "$sock" ] && seen=1
    sleep 0.1
done
wait $pid
echo "@@notel-rc $? seen=$seen started=$(grep -c 'Forwarding started' /tmp/notel.out)"
exit 0
