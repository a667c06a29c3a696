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

#[test]
fn a_stalled_guest_is_reported_and_its_test_run_once_more() {
    // A frozen QEMU (SIGSTOP: what a stalled TCG vCPU looks like from the
    // host) must end in Error::Stalled within the stall timeout, be recorded
    // as an emulator fault, and make retry_on_emulator_fault run the test
    // body a second time.
    let mut calls = 0;
    let got = rig::retry_on_emulator_fault("stall", || {
        calls += 1;
        if calls > 1 {
            return "second run";
        }
        let config = VmConfig {
            stall_timeout: Duration::from_secs(5),
            ..VmConfig::default()
        };
        let vm = Vm::start(config, "echo go; sleep 120").expect("boot");
        vm.wait_for_line("go", Duration::from_secs(60))
            .expect("command started");
        // SAFETY: kill(2) on QEMU's pid, which this test's Vm owns; Drop
        // sends SIGKILL, which ends a stopped process too.
        unsafe { libc::kill(vm.qemu_pid() as i32, libc::SIGSTOP) };
        let started = std::time::Instant::now();
        let err = vm.wait().expect_err("a stopped guest must not pass");
        assert!(matches!(err, Error::Stalled { .. }), "got {err}");
        assert!(started.elapsed() < Duration::from_secs(30), "{err}");
        panic!("the guest stalled: {err}");
    });
    assert_eq!((got, calls), ("second run", 2));
}

#[test]
fn a_failure_of_the_code_under_test_is_not_run_again() {
    let mut calls = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rig::retry_on_emulator_fault("plain", || {
            calls += 1;
            panic!("an assertion of the test failed");
        })
    }));
    assert!(r.is_err());
    assert_eq!(calls, 1);
}
