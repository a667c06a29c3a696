//! hw in the QEMU guest: every scenario of `hwcheck` (and devbind) in one boot.
//!
//! The guest runs one shell script of hwcheck/devbind invocations; each test
//! below asserts on the lines of its own scenario. The first test to need the
//! run boots the guest; the others wait for the same result.

use apps::pattern::pattern;
use std::sync::OnceLock;
use std::time::Duration;

use rig::{IVSHMEM_PCI, Vm, VmConfig, nic_pci};

struct Run {
    output: String,
    console: String,
    shm: Vec<u8>,
    seed: u64,
}

/// A device no q35 guest has.
const ABSENT: &str = "0000:07:00.0";

fn script(seed: u64) -> String {
    let (igb, e1000e) = (nic_pci(0), nic_pci(1));
    [
        format!("hwcheck open {igb} {e1000e} {IVSHMEM_PCI}"),
        format!("hwcheck msix {igb}"),
        format!("hwcheck msix {e1000e}"),
        format!("hwcheck dma-ivshmem {igb} {IVSHMEM_PCI} {seed}"),
        format!("hwcheck dma-before-open {e1000e}"),
        format!("hwcheck devmem-fd {igb}"),
        format!("hwcheck neg-nodev {ABSENT}"),
        "hwcheck neg-malformed 0000:00:3.0".to_string(),
        "echo '== devbind unbind'".to_string(),
        format!("devbind --unbind {e1000e}"),
        "devbind --status".to_string(),
        format!("hwcheck neg-driver {e1000e}"),
        "echo '== devbind bind'".to_string(),
        format!("devbind --bind vfio-pci {e1000e}"),
        format!("hwcheck open {e1000e} | sed 's/^hwcheck: open:/hwcheck: reopen:/'"),
        "echo '== devbind status'".to_string(),
        "devbind --status".to_string(),
        "echo '== devbind end'".to_string(),
        "hwcheck neg-hugepages".to_string(),
        format!("hwcheck neg-memlock {igb}"),
        format!("hwcheck neg-iova {igb}"),
        format!("hwcheck neg-mmap {igb}"),
        "echo hwcheck-all-done".to_string(),
    ]
    .join("; ")
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| rig::retry_on_emulator_fault("hw_guest", boot_and_run_all))
}

fn boot_and_run_all() -> Run {
    let seed = 0x0bad_cafe_u64 ^ u64::from(std::process::id());
    let vm = Vm::start(VmConfig::default(), &script(seed)).expect("boot the guest");
    // Read the ivshmem file while the VM (which owns it) still runs.
    let shm = match vm.wait_for_line("hwcheck: dma-ivshmem:", Duration::from_secs(120)) {
        Ok(_) => vm
            .shm()
            .expect("the default VM has ivshmem")
            .read(0, 4096)
            .expect("read the shm file"),
        Err(e) => panic!("dma-ivshmem never reported: {e}"),
    };
    let out = vm.wait().expect("guest run");
    println!(
        "boot + all hw scenarios: {:.1} s",
        out.elapsed.as_secs_f64()
    );
    Run {
        output: out.output,
        console: out.console,
        shm,
        seed,
    }
}

/// The lines of one scenario.
fn lines<'a>(r: &'a Run, scenario: &str) -> Vec<&'a str> {
    let prefix = format!("hwcheck: {scenario}:");
    r.output
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

/// Asserts the scenario reported ok (and never FAIL); returns its lines.
fn assert_ok<'a>(scenario: &str) -> Vec<&'a str> {
    let r = run();
    let ls = lines(r, scenario);
    assert!(
        ls.iter().any(|l| l.contains(": ok: ")) && !ls.iter().any(|l| l.contains(": FAIL: ")),
        "scenario {scenario} did not pass:\n{}\n--- whole output ---\n{}",
        ls.join("\n"),
        r.output
    );
    ls
}

/// The user-facing error message a negative scenario printed.
fn error_message<'a>(scenario: &str) -> Vec<&'a str> {
    assert_ok(scenario)
        .into_iter()
        .filter_map(|l| l.split_once(": error: ").map(|(_, m)| m))
        .collect()
}

#[test]
fn every_scenario_ran_to_the_end() {
    let r = run();
    assert!(
        r.output.contains("hwcheck-all-done"),
        "the script stopped early:\n{}",
        r.console
    );
    assert!(!r.output.contains(": FAIL: "), "{}", r.output);
}

#[test]
fn opens_each_nic_and_ivshmem_and_reads_status() {
    let ls = assert_ok("open");
    for (pci, id) in [
        (nic_pci(0), "8086:10c9"),
        (nic_pci(1), "8086:10d3"),
        (IVSHMEM_PCI.to_string(), "1af4:1110"),
    ] {
        let l = ls
            .iter()
            .find(|l| l.contains(&pci))
            .unwrap_or_else(|| panic!("no line for {pci}: {ls:?}"));
        assert!(l.contains(&format!("id={id}")), "{l}");
        assert!(!l.contains("status=0xffffffff"), "BAR0 not mapped: {l}");
    }
    // igb and e1000e: 128 KiB of registers; both offer MSI-X.
    for pci in [nic_pci(0), nic_pci(1)] {
        let l = ls.iter().find(|l| l.contains(&pci)).unwrap();
        assert!(l.contains("bar0=0x20000"), "{l}");
        assert!(!l.contains("msix=0"), "{l}");
        assert!(l.contains("reset=ok"), "VFIO_DEVICE_RESET: {l}");
    }
    let summary = ls.iter().find(|l| l.contains(": ok: ")).unwrap();
    assert!(
        summary.contains("3 device(s) in one container"),
        "{summary}"
    );
}

#[test]
fn msix_vectors_go_to_eventfds() {
    let ls = assert_ok("msix");
    assert_eq!(
        ls.iter().filter(|l| l.contains(": ok: ")).count(),
        2,
        "{ls:?}"
    );
    assert!(
        ls.iter()
            .any(|l| l.contains("MSI-X vectors") && l.contains("requested")),
        "{ls:?}"
    );
}

#[test]
fn hugepage_dma_and_ivshmem_bar2_share_one_container() {
    let r = run();
    let ls = assert_ok("dma-ivshmem");
    let ok = ls.iter().find(|l| l.contains(": ok: ")).unwrap();
    assert!(
        ok.contains("len=0x400000"),
        "3 MiB rounds up to 4 MiB: {ok}"
    );
    assert!(
        ok.contains("ivshmem bar2") && ok.contains("len=0x1000000"),
        "{ok}"
    );
    assert_eq!(
        r.shm,
        pattern(r.seed),
        "the bytes written through the BAR2 mapping are not in the host's /dev/shm file"
    );
}

#[test]
fn dma_memory_allocated_before_any_device_is_mapped_when_one_joins() {
    assert_ok("dma-before-open");
}

#[test]
fn an_fd_becomes_device_memory_shared_with_its_file() {
    assert_ok("devmem-fd");
}

#[test]
fn nonexistent_device_is_named() {
    let m = error_message("neg-nodev");
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].contains(&format!("no PCI device {ABSENT}")),
        "{}",
        m[0]
    );
}

#[test]
fn malformed_address_is_refused() {
    let m = error_message("neg-malformed");
    assert!(
        m[0].contains("\"0000:00:3.0\"") && m[0].contains("2 hex digits"),
        "{}",
        m[0]
    );
}

#[test]
fn device_on_no_driver_says_how_to_bind_and_devbind_fixes_it() {
    let r = run();
    let m = error_message("neg-driver");
    assert!(
        m[0].contains(&format!(
            "{} is bound to no driver, not vfio-pci",
            nic_pci(1)
        )),
        "{}",
        m[0]
    );
    assert!(
        m[0].contains(&format!("devbind --bind vfio-pci {}", nic_pci(1))),
        "{}",
        m[0]
    );
    // devbind --unbind: no igb/e1000e module in the guest, so nothing takes it.
    assert!(
        r.output.contains(&format!(
            "{}: unbound, no kernel driver took it",
            nic_pci(1)
        )),
        "{}",
        r.output
    );
    // After devbind --bind vfio-pci, the device opens again.
    assert!(
        r.output
            .contains(&format!("{}: bound to vfio-pci", nic_pci(1))),
        "{}",
        r.output
    );
    let re = lines(r, "reopen");
    assert!(
        re.iter()
            .any(|l| l.contains(&nic_pci(1)) && l.contains("id=8086:10d3")),
        "{re:?}"
    );
}

/// The text between two `== devbind` markers.
fn devbind_block<'a>(r: &'a Run, from: &str, to: &str) -> &'a str {
    let a = r
        .output
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?}:\n{}", r.output));
    let b = r.output[a..].find(to).map_or(r.output.len(), |b| a + b);
    &r.output[a..b]
}

#[test]
fn devbind_status_sorts_devices_by_driver() {
    let r = run();
    let after = devbind_block(r, "== devbind status", "== devbind end");
    let dpdk = after
        .split("Network devices using kernel driver")
        .next()
        .unwrap();
    assert!(
        dpdk.contains("Network devices using DPDK-compatible driver"),
        "{after}"
    );
    for (pci, name) in [
        (
            nic_pci(0),
            "'82576 Gigabit Network Connection 10c9' drv=vfio-pci iommu_group=",
        ),
        (
            nic_pci(1),
            "'82574L Gigabit Network Connection 10d3' drv=vfio-pci iommu_group=",
        ),
    ] {
        assert!(
            dpdk.contains(&format!("{pci} {name}")),
            "{pci} not listed as vfio-pci:\n{after}"
        );
    }
    assert!(
        after.contains("Other devices using DPDK-compatible driver"),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "{IVSHMEM_PCI} 'Inter-VM shared memory 1110' drv=vfio-pci"
        )),
        "{after}"
    );
    // While unbound, the e1000e is among the "Other Network devices" (no driver).
    let during = devbind_block(r, "== devbind unbind", "== devbind bind");
    let other = during
        .split("Other Network devices")
        .nth(1)
        .unwrap_or_else(|| panic!("{during}"));
    assert!(other.contains(&nic_pci(1)), "{during}");
    assert!(
        !during.contains("Warning: no device has an IOMMU group"),
        "{during}"
    );
}

#[test]
fn no_hugepages_says_how_many_to_reserve() {
    let m = error_message("neg-hugepages");
    assert!(m[0].contains("2 needed, 0 free of 0 reserved"), "{}", m[0]);
    assert!(
        m[0].contains("echo 2 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
        "{}",
        m[0]
    );
}

#[test]
fn memlock_limit_is_named_with_the_fix() {
    let m = error_message("neg-memlock");
    assert!(
        m[0].contains("limit 65536 bytes") && m[0].contains("ulimit -l unlimited"),
        "{}",
        m[0]
    );
}

#[test]
fn iova_exhaustion_is_a_typed_error() {
    let ls = assert_ok("neg-iova");
    let ok = ls.iter().find(|l| l.contains(": ok: ")).unwrap();
    // 8 MiB of IOVA minus the never-used first MiB holds three 2 MiB regions.
    assert!(ok.contains("after 3 regions"), "{ok}");
    let m = error_message("neg-iova");
    assert!(
        m[0].contains("23-bit") && m[0].contains("set_dma_mask_bits"),
        "{}",
        m[0]
    );
}

#[test]
fn unmappable_regions_are_refused() {
    let m = error_message("neg-mmap");
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(
        m[0].contains("region 2 of PCI device") && m[0].contains("cannot be mmapped"),
        "{}",
        m[0]
    );
    assert!(m[1].contains("region 7 of PCI device"), "{}", m[1]);
    assert!(
        m[3].contains("BAR 5") && m[3].contains("not implemented"),
        "{}",
        m[3]
    );
}
