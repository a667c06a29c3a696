//! The first end-to-end test: in the guest, `probe` opens every NIC through
//! VFIO, enables bus mastering, maps BAR0, reads STATUS and the MAC from the
//! EEPROM (EERD), and writes a pattern into the ivshmem BAR2. The host checks
//! the MACs against QEMU's command line and the pattern in the /dev/shm file.

use apps::pattern::pattern;
use rig::{IVSHMEM_PCI, Vm, VmConfig, mac_str};

/// Checks probe's report for one NIC; `Err` says what is wrong.
fn check_nic(output: &str, pci: &str, mac: &[u8; 6]) -> Result<(), String> {
    let line = output
        .lines()
        .find(|l| l.starts_with("probe: nic ") && l.contains(pci))
        .ok_or_else(|| format!("no probe line for {pci}"))?;
    let got = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("mac="))
        .ok_or_else(|| format!("no mac= in {line:?}"))?;
    if got != mac_str(mac) {
        return Err(format!(
            "{pci}: EEPROM MAC {got}, QEMU was given {}",
            mac_str(mac)
        ));
    }
    let status = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("status=0x"))
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or_else(|| format!("no status= in {line:?}"))?;
    if status == 0xffff_ffff {
        return Err(format!("{pci}: STATUS reads all ones: BAR0 not mapped"));
    }
    Ok(())
}

#[test]
fn probe_reads_macs_and_writes_device_memory() {
    rig::retry_on_emulator_fault("probe_reads_macs_and_writes_device_memory", || {
        let seed = 0x5eed_1234_u64 ^ u64::from(std::process::id());
        let vm = Vm::start(VmConfig::default(), &format!("probe --seed {seed}"))
            .expect("boot the guest");
        let nics = vm.nics().to_vec();
        let shm_path = vm.shm().expect("ivshmem").path().to_path_buf();
        // Read the shared memory before the VM (and its file) go away: wait for
        // probe's last line, then read.
        vm.wait_for_line("probe: done", std::time::Duration::from_secs(60))
            .expect("probe finished");
        let shm = vm
            .shm()
            .expect("ivshmem")
            .read(0, 4096)
            .expect("read the shm file");
        let out = vm.wait().expect("guest run");
        println!(
            "boot + probe + shutdown: {:.2} s",
            out.elapsed.as_secs_f64()
        );
        assert_eq!(out.status, 0, "probe failed:\n{}", out.console);
        for nic in &nics {
            check_nic(&out.output, &nic.pci, &nic.mac)
                .unwrap_or_else(|e| panic!("{e}\n{}", out.output));
        }
        assert!(
            out.output
                .contains(&format!("probe: ivshmem {IVSHMEM_PCI}")),
            "{}",
            out.output
        );
        assert_eq!(
            shm,
            pattern(seed),
            "the pattern probe wrote is not in {}",
            shm_path.display()
        );
    })
}

#[test]
fn a_wrong_mac_is_caught() {
    // The checker above is what makes the probe test fail on a wrong MAC
    // read; prove it rejects one byte off, swapped words and a missing line.
    let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    let good = "probe: nic 0000:00:03.0 8086:10c9 status=0x00080083 mac=52:54:00:12:34:56";
    assert!(check_nic(good, "0000:00:03.0", &mac).is_ok());
    let off = good.replace("34:56", "34:57");
    assert!(check_nic(&off, "0000:00:03.0", &mac).is_err());
    let swapped = good.replace("52:54:00:12:34:56", "54:52:12:00:56:34");
    assert!(check_nic(&swapped, "0000:00:03.0", &mac).is_err());
    assert!(check_nic(good, "0000:00:04.0", &mac).is_err());
    let dead = good.replace("0x00080083", "0xffffffff");
    assert!(check_nic(&dead, "0000:00:03.0", &mac).is_err());
}
