//! The testpmd binary's command line on the host (no NIC, no VFIO here):
//! every invalid option is refused with one line on stderr and exit status
//! 2 before anything is opened; --help and --version exit 0.

use std::process::{Command, Output};

fn testpmd(args: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testpmd"))
        .args(args.split_whitespace())
        .output()
        .expect("run testpmd")
}

#[test]
fn invalid_options_exit_2_with_one_line() {
    let p = "-a 0000:00:03.0";
    let cases = [
        String::new(),
        "-a 0000:00:3.0".into(),
        format!("{p} -a 00:03.0"),
        format!("{p} -l 0-x"),
        format!("{p} -l 0,100"),
        format!("{p} --nb-cores=9"),
        format!("{p} --rxq=0"),
        format!("{p} --txq=9"),
        format!("{p} --rxd=16"),
        format!("{p} --txd=100"),
        format!("{p} --burst=0"),
        format!("{p} --burst=513"),
        format!("{p} --mbuf-size=100"),
        format!("{p} --total-num-mbufs=1"),
        format!("{p} --forward-mode=bogus"),
        format!("{p} --eth-peer=3,02:00:00:00:00:03"),
        format!("{p} --eth-peer=0,zz:00:00:00:00:00"),
        format!("{p} --txpkts=10"),
        format!("{p} --txpkts=30,30"),
        format!("{p} --tx-ip=1.2.3.4"),
        format!("{p} --tx-udp=x"),
        format!("{p} --flows=0"),
        format!("{p} --stats-period=0"),
        format!("{p} --duration=never"),
        format!("{p} --max-packets=0"),
        format!("{p} --forward-mode=txonly --idle-timeout=1"),
        format!("{p} -i --duration=1"),
        format!("{p} -i --tx-first"),
        format!("{p} --auto-start"),
        format!("{p} --capture-out=/tmp/x.pcap --capture-port=2"),
        format!("{p} --log-level=chatty"),
        format!("{p} --unknown"),
        format!("{p} -- --allow 00:04.0"),
    ];
    for c in &cases {
        let out = testpmd(c);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{c:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{c:?}: one line, got {err:?}");
        assert!(err.starts_with("testpmd: "), "{c:?}: {err}");
        assert!(out.stdout.is_empty(), "{c:?}: nothing on stdout");
    }
}

#[test]
fn help_and_version_exit_0() {
    let h = testpmd("--help");
    assert_eq!(h.status.code(), Some(0));
    let text = String::from_utf8_lossy(&h.stdout);
    for opt in [
        "--allow",
        "--lcores",
        "--forward-mode",
        "--burst",
        "--json",
        "--capture-out",
    ] {
        assert!(text.contains(opt), "help lacks {opt}");
    }
    let v = testpmd("--version");
    assert_eq!(v.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("testpmd "));
}

#[test]
fn valid_options_get_past_validation() {
    // Past validation, testpmd needs hugepages and VFIO: on a host without
    // them it fails at set-up (status 1), not as a usage error.
    let out = testpmd("-l 0 -a 0000:00:03.0 --duration=1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("testpmd: "), "{err}");
}
