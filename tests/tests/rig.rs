//! The rig itself: exit status and output, timeouts, cleanup, missing QEMU.

use rig::{Error, Vm, VmConfig};
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn command_status_and_output_come_back() {
    let out = Vm::run(
        VmConfig::default(),
        "echo hello from the guest; ls /dev/vfio | wc -l; exit 7",
    )
    .expect("guest run (needs scripts/setup)");
    assert_eq!(out.status, 7, "console:\n{}", out.console);
    let lines: Vec<&str> = out.output.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"hello from the guest"),
        "output: {}",
        out.output
    );
    // Three devices bound to vfio-pci: igb, e1000e, ivshmem, each in its own
    // group, plus the container node.
    assert_eq!(
        lines.get(1).map(|l| l.trim()),
        Some("4"),
        "output: {}",
        out.output
    );
    println!(
        "boot + command + shutdown: {:.2} s",
        out.elapsed.as_secs_f64()
    );
}

#[test]
fn timeout_ends_qemu_and_leaves_nothing_behind() {
    let config = VmConfig {
        timeout: Duration::from_secs(10),
        ..VmConfig::default()
    };
    let vm = Vm::start(config, "sleep 600").expect("boot");
    let dir = vm.work_dir().to_path_buf();
    let shm = vm.shm().expect("ivshmem file").path().to_path_buf();
    let pid = vm.qemu_pid();
    assert!(dir.join("n0.sock").exists() || dir.exists());
    assert!(shm.exists());
    let err = vm.wait().expect_err("sleep 600 must time out");
    assert!(matches!(err, Error::Timeout { .. }), "got {err}");
    assert!(err.to_string().contains("timed out after 10 s"), "{err}");
    // QEMU is gone (reaped, so not even a zombie), and so are its files.
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "QEMU {pid} still exists"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!shm.exists(), "{} left behind", shm.display());
}

#[test]
fn missing_qemu_names_scripts_setup() {
    let config = VmConfig {
        qemu: Some(PathBuf::from("/nonexistent/qemu-system-x86_64")),
        ..VmConfig::default()
    };
    let err = Vm::run(config, "true").expect_err("a missing QEMU must fail");
    assert!(matches!(err, Error::SetupMissing(_)), "got {err}");
    assert!(err.to_string().contains("scripts/setup"), "{err}");
}
