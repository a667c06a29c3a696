//! Golden trace test (issue 10, deliverable 3): Linux's own igb and e1000e
//! drivers are the reference for what real silicon needs at bring-up.

use rig::{NicModel, RunOutput, Vm, VmConfig, nic_pci};
use std::time::Duration;

/// QEMU's register and PHY access events (igb's register accesses go
/// through the e1000e_core_* events too; its PHY ones have their own).
const EVENTS: [&str; 6] = [
    "e1000e_core_write",
    "e1000e_core_read",
    "e1000e_core_mdic_write",
    "e1000e_core_mdic_read",
    "igb_core_mdic_write",
    "igb_core_mdic_read",
];

/// The guest command: Linux's driver brings the NIC up and down, then ours
/// does, each phase between `@@mark` lines.
fn guest_command(model: NicModel) -> String {
    let bdf = nic_pci(0);
    let (mods, drv) = match model {
        NicModel::Igb => ("dca i2c-algo-bit igb", "igb"),
        NicModel::E1000e => ("e1000e", "e1000e"),
    };
    format!(
        "B={bdf}; D=/sys/bus/pci/devices/$B; \
         m() {{ echo \"@@mark $1\"; sleep 0.5; }}; \
         m linux-start; \
         echo > $D/driver_override && echo $B > $D/driver/unbind || exit 10; \
         for x in {mods}; do insmod /lib/modules/$x.ko || exit 11; done; \
         i=0; while [ ! -d $D/net ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         IF=$(ls $D/net) && [ -n \"$IF\" ] || exit 12; \
         ip link set dev $IF up || exit 13; \
         i=0; while [ \"$(cat /sys/class/net/$IF/carrier 2>/dev/null)\" != 1 ]; do \
           [ $i -ge 300 ] && exit 14; sleep 0.1; i=$((i+1)); done; \
         m linux-link-up; \
         ip link set dev $IF down || exit 15; \
         echo $B > /sys/bus/pci/drivers/{drv}/unbind || exit 16; \
         m linux-end; \
         echo vfio-pci > $D/driver_override; echo $B > /sys/bus/pci/drivers_probe; \
         [ -e $D/driver ] || exit 17; \
         m ours-start; \
         pmdcheck link --pci $B --max-ms 20000 || exit 18; \
         m ours-end"
    )
}

fn run(model: NicModel) -> RunOutput {
    let config = VmConfig {
        nics: vec![model],
        ivshmem_mib: None,
        hugepages: 64,
        timeout: Duration::from_secs(240),
        trace: EVENTS.iter().map(|e| e.to_string()).collect(),
        ..VmConfig::default()
    };
    let out = Vm::run(config, &guest_command(model)).expect("guest run");
    assert_eq!(out.status, 0, "guest command failed:\n{}", out.console);
    let dir = rig::workspace_root().join("target/golden-trace");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{model:?}.log")), &out.trace);
    let marks: Vec<String> = out
        .marks
        .iter()
        .map(|(n, t)| {
            format!(
                "{n} {:?}",
                t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
            )
        })
        .collect();
    let _ = std::fs::write(dir.join(format!("{model:?}.marks")), marks.join("\n"));
    out
}

#[test]
fn igb_bring_up_matches_linux() {
    run(NicModel::Igb);
}

#[test]
fn e1000e_bring_up_matches_linux() {
    run(NicModel::E1000e);
}
