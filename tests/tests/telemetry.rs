//! DPDK's telemetry v2 socket of our testpmd, read in the QEMU guest by
//! Debian's own client, `dpdk-telemetry.py` (the telemetry image variant:
//! python3 with only the stdlib the script loads). testpmd forwards a
//! known number of frames (io, port 0 -> port 1); the socket's answers
//! must equal those counts and testpmd's own `show port stats`; malformed
//! and oversized commands get DPDK's null reply and the app keeps serving
//! new clients; with `--no-telemetry` there is no socket. The guest side
//! is `tests/src/telemetry-guest.sh`.

use rig::testpmd_out::udp;
use rig::{Vm, VmConfig, nic_mac, nic_pci};
use serde_json::Value;
use std::time::Duration;

/// Frames sent into port 0, in batches (each forwarded before the next).
const N: usize = 400;
const BATCH: usize = 50;
const PREFIX: &str = "tele1";

/// The replies dpdk-telemetry.py printed between the markers, by command.
fn replies(out: &str) -> Vec<Value> {
    let block = out
        .split("@@tel-begin")
        .nth(1)
        .and_then(|b| b.split("@@tel-end").next())
        .unwrap_or_else(|| panic!("no telemetry block in:\n{out}"));
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn answer<'a>(all: &'a [Value], cmd: &str) -> &'a Value {
    all.iter()
        .find_map(|v| v.get(cmd))
        .unwrap_or_else(|| panic!("no reply to {cmd} in {all:?}"))
}

/// `show port stats`' numbers for `port`: (RX-packets, RX-bytes,
/// TX-packets, TX-bytes).
fn shown_stats(out: &str, port: usize) -> (u64, u64, u64, u64) {
    let block = out
        .split(&format!("NIC statistics for port {port} "))
        .nth(1)
        .unwrap_or_else(|| panic!("no show port stats for port {port}:\n{out}"));
    let after = |key: &str| -> u64 {
        block
            .split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {block}"))
    };
    (
        after("RX-packets:"),
        after("RX-bytes:"),
        after("TX-packets:"),
        after("TX-bytes:"),
    )
}

fn telemetry_session() {
    let config = VmConfig {
        image: Some(rig::image::telemetry_image().expect("the telemetry image")),
        ..VmConfig::default()
    };
    let cmd = format!("telemetry-guest {N} {PREFIX} {} {}", nic_pci(0), nic_pci(1));
    let vm = Vm::start(config, &cmd).expect("boot the guest");
    vm.wait_for_line("Forwarding started", Duration::from_secs(120))
        .expect("testpmd starts forwarding");
    let mut bytes = 0u64;
    for b in 0..N / BATCH {
        let frames: Vec<Vec<u8>> = (0..BATCH)
            .map(|i| udp(nic_mac(0), (b * BATCH + i) as u8, 60 + (i % 20) * 50))
            .collect();
        bytes += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        for f in &frames {
            vm.peer(0).send(f).expect("send to port 0");
        }
        let got = vm.peer(1).recv_n(BATCH, Duration::from_secs(20));
        assert_eq!(got.len(), BATCH, "batch {b} forwarded to port 1");
    }
    let out = vm.wait().expect("the guest side ends");
    let o = &out.output;
    assert!(out.success(), "{o}");
    assert!(
        o.contains(&format!(
            "@@tel-socket /var/run/dpdk/{PREFIX}/dpdk_telemetry.v2"
        )),
        "the socket at DPDK's path for --file-prefix:\n{o}"
    );
    assert!(
        !o.contains("@@tel-timeout"),
        "port 1 never showed {N}:\n{o}"
    );
    let all = replies(o);
    let n = N as u64;

    // The counts of the run, as the socket gives them.
    let s0 = answer(&all, "/ethdev/stats");
    assert_eq!(s0["ipackets"], n, "{s0}");
    assert_eq!(s0["opackets"], 0, "{s0}");
    let s1 = all
        .iter()
        .filter_map(|v| v.get("/ethdev/stats"))
        .nth(1)
        .expect("/ethdev/stats,1");
    assert_eq!(s1["opackets"], n, "{s1}");
    assert_eq!(s1["ipackets"], 0, "{s1}");
    for key in [
        "ipackets",
        "opackets",
        "ibytes",
        "obytes",
        "imissed",
        "ierrors",
        "oerrors",
        "rx_nombuf",
    ] {
        assert!(s0[key].is_u64(), "{key} in {s0}");
    }
    assert_eq!(s0["ibytes"], bytes, "bytes without CRC: {s0}");
    assert_eq!(s1["obytes"], bytes, "{s1}");
    // ... equal to testpmd's own counters, read after the queries.
    let (rx0, rxb0, tx0, _) = shown_stats(o, 0);
    let (rx1, _, tx1, txb1) = shown_stats(o, 1);
    assert_eq!((rx0, rxb0, tx0), (n, bytes, 0), "port 0 shown");
    assert_eq!((rx1, tx1, txb1), (0, n, bytes), "port 1 shown");
    let x = answer(&all, "/ethdev/xstats");
    assert_eq!(x["rx_good_packets"], n, "{x}");
    assert_eq!(x["rx_q0_packets"], n, "{x}");

    // The lists and the descriptions.
    assert_eq!(answer(&all, "/ethdev/list"), &serde_json::json!([0, 1]));
    let info = answer(&all, "/info");
    assert_eq!(info["max_output_len"], 16384, "{info}");
    assert!(info["pid"].as_u64().is_some_and(|p| p > 1), "{info}");
    let cmds = answer(&all, "/");
    for c in [
        "/",
        "/info",
        "/help",
        "/ethdev/list",
        "/ethdev/info",
        "/ethdev/stats",
        "/ethdev/xstats",
        "/ethdev/link_status",
        "/mempool/list",
        "/mempool/info",
        "/netmem/stats",
    ] {
        assert!(
            cmds.as_array().is_some_and(|a| a.iter().any(|v| v == c)),
            "{c} in {cmds}"
        );
    }
    assert_eq!(
        answer(&all, "/mempool/list"),
        &serde_json::json!(["testpmd"])
    );
    let link = answer(&all, "/ethdev/link_status");
    assert_eq!(link["status"], "UP", "{link}");
    assert_eq!(link["speed"], 1000, "{link}");
    assert_eq!(link["duplex"], "full-duplex", "{link}");
    let pi = answer(&all, "/ethdev/info");
    assert_eq!(pi["name"], nic_pci(0).as_str(), "{pi}");
    assert_eq!(pi["nb_rx_queues"], 1);
    assert_eq!(pi["dev_started"], 1);
    assert_eq!(pi["mtu"], 1500);
    assert_eq!(pi["promiscuous"], 1);
    assert_eq!(
        pi["mac_addr"],
        rig::mac_str(&nic_mac(0)).to_uppercase().as_str(),
        "{pi}"
    );
    let mi = answer(&all, "/mempool/info");
    assert_eq!(mi["name"], "testpmd", "{mi}");
    assert!(mi["size"].as_u64().is_some_and(|s| s > 0), "{mi}");
    let ns = answer(&all, "/netmem/stats");
    assert!(
        ns["alloc_fast"].as_u64().unwrap_or(0) + ns["alloc_slow"].as_u64().unwrap_or(0) >= n,
        "every frame took a buffer: {ns}"
    );
    assert!(ns["in_use"].as_u64().is_some_and(|u| u > 0), "{ns}");
    let help = answer(&all, "/help");
    assert!(help["/ethdev/stats"].is_string(), "{help}");
    // A port that does not exist and a bad parameter: DPDK's null reply.
    let nulls = all
        .iter()
        .filter_map(|v| v.get("/ethdev/stats"))
        .filter(|v| v.is_null())
        .count();
    assert_eq!(nulls, 2, "/ethdev/stats,7 and ,x: {all:?}");
    assert!(answer(&all, "/bad").is_null());

    // The raw client: hello, then malformed and oversized commands.
    let raw: Vec<&str> = o
        .lines()
        .filter_map(|l| l.trim().strip_prefix("@@raw "))
        .collect();
    assert_eq!(raw.len(), 6, "{o}");
    let hello: Value = serde_json::from_str(raw[0]).expect("hello is JSON");
    assert_eq!(hello["max_output_len"], 16384);
    assert!(
        hello["version"].is_string() && hello["pid"].is_u64(),
        "{hello}"
    );
    for r in &raw[1..] {
        let v: Value = serde_json::from_str(r).unwrap_or_else(|e| panic!("{e}: {r}"));
        assert_eq!(v.as_object().map(|m| m.len()), Some(1), "{r}");
    }
    assert_eq!(raw[2], r#"{"none":null}"#);
    assert_eq!(
        raw[3],
        format!("{{\"/{}\":null}}", "e".repeat(55)),
        "oversized"
    );
    // A long parameter is cut at 1023 bytes: "0999…" reads as port 0 (as
    // strtoul does) and answers.
    let long: Value = serde_json::from_str(raw[4]).expect("JSON");
    assert_eq!(long["/ethdev/stats"]["ipackets"], n, "{long}");
    let last: Value = serde_json::from_str(raw[5]).expect("JSON");
    assert_eq!(last["/ethdev/stats"]["ipackets"], n);
    assert!(o.contains("@@raw-rc 0"), "{o}");
    let after = o
        .lines()
        .find_map(|l| l.trim().strip_prefix("@@after "))
        .expect("a query after the bad ones");
    let after: Value = serde_json::from_str(after).unwrap_or_else(|e| panic!("{e}: {after}"));
    assert_eq!(after["/ethdev/stats"]["ipackets"], n);
    assert!(o.contains("@@testpmd-rc 0"), "testpmd ends normally:\n{o}");
    assert!(!o.contains("@@tel-socket-left"), "socket removed at exit");
    assert!(o.contains("Pool: 0 of"), "no buffer left in use:\n{o}");
    // --no-telemetry: a run that forwarded, and no socket at any time.
    assert!(
        o.contains("@@notel-rc 0 seen=0 started=1"),
        "--no-telemetry run:\n{o}"
    );
}

#[test]
fn dpdk_telemetry_py_reads_testpmds_counters() {
    rig::retry_on_emulator_fault(
        "dpdk_telemetry_py_reads_testpmds_counters",
        telemetry_session,
    )
}
