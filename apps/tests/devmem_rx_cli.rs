//! devmem-rx on the host (no NIC here): a failing run reports its error on
//! stderr, one line, and leaves stdout (the machine-readable report) empty.

use std::process::Command;

#[test]
fn a_failing_run_reports_on_stderr_not_stdout() {
    let out = Command::new(env!("CARGO_BIN_EXE_devmem-rx"))
        .args(["--pci", "0000:7f:1f.7", "--region", "0000:7f:1f.6"])
        .output()
        .expect("run devmem-rx");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "no such device, yet it succeeded");
    assert!(
        !stdout.contains("devmem-rx: error"),
        "the error went to stdout: {stdout:?}"
    );
    assert!(
        stderr.contains("devmem-rx: error"),
        "no error on stderr: {stderr:?}"
    );
}
