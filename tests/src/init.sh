#!/bin/busybox sh
# Guest init for the rig: mounts, loads VFIO, binds every igb / e1000e /
# ivshmem device to vfio-pci, reserves hugepages, runs the command passed on
# the kernel command line (rig.cmd=<base64>) and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/hugepages /dev/pts /tmp
mount -t hugetlbfs none /dev/hugepages
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1

hugepages=128
cmd64=
for w in $(cat /proc/cmdline); do
    case "$w" in
        rig.cmd=*) cmd64="${w#rig.cmd=}" ;;
        rig.hugepages=*) hugepages="${w#rig.hugepages=}" ;;
    esac
done

# Heartbeat on the second serial port: the host's watchdog reads it.
( while :; do echo . ; sleep 1; done ) > /dev/ttyS1 2>/dev/null &

for m in vfio vfio_iommu_type1 irqbypass vfio-pci-core vfio-pci; do
    insmod "/lib/modules/$m.ko" || echo "rig-init: insmod $m failed"
done

for d in /sys/bus/pci/devices/*; do
    id="$(cat "$d/vendor"):$(cat "$d/device")"
    case "$id" in
        0x8086:0x10c9|0x8086:0x10d3|0x1af4:0x1110)
            bdf="${d##*/}"
            echo vfio-pci > "$d/driver_override"
            [ -e "$d/driver" ] && echo "$bdf" > "$d/driver/unbind"
            echo "$bdf" > /sys/bus/pci/drivers_probe
            ;;
    esac
done

echo "$hugepages" > /proc/sys/vm/nr_hugepages
ulimit -l unlimited 2>/dev/null
cd /tmp
cmd="$(echo "$cmd64" | base64 -d)"
echo "@@rig-start"
sh -c "$cmd"
rc=$?
echo "@@rig-exit $rc"
sync
reboot -f
