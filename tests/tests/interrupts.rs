//! Interrupts in the QEMU guest (igb at 0000:00:03.0 = port 0, e1000e at
//! 0000:00:04.0 = port 1), through testpmd:
//!
//! - `rx_intr_lcore_sleeps_when_idle_and_wakes_without_loss`: with
//!   `--rx-intr` an idle forwarding lcore sleeps on both ports' RX
//!   interrupts (its thread's CPU time stays a small share of the wall
//!   time), wakes when a frame arrives on either chip within a bound, and
//!   forwards every frame of a paced run both ways (exact counts).
//! - `link_flap_gives_a_down_and_an_up_event_on_both_chips`: QMP
//!   `set_link` off and on, per NIC, produces DPDK's "link state change
//!   event" with the link down, then one with it up, from the MSI-X
//!   other-causes vector; after `port stop all` / `port start all` at the
//!   prompt (vectors disabled, then enabled again) the flaps give their
//!   events again and the sleeping lcore still wakes on both chips.

use rig::testpmd_out::{fwd_stats, quick_traffic, udp};
use rig::traffic::{self, TrafficReport};
use rig::{RunOutput, Vm, VmConfig, nic_mac, nic_pci};
use std::time::{Duration, Instant};

fn ports() -> String {
    format!("-a {} -a {}", nic_pci(0), nic_pci(1))
}

fn boot(script: &str) -> Vm {
    Vm::start(
        VmConfig {
            timeout: Duration::from_secs(300),
            ..VmConfig::default()
        },
        script,
    )
    .expect("boot the guest")
}

fn wait(vm: &Vm, needle: &str) -> String {
    vm.wait_for_line(needle, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}\n{}", vm.output_so_far()))
}

/// The text between the line holding `from` and the next line holding `to`.
fn section<'a>(out: &'a str, from: &str, to: &str) -> &'a str {
    let Some(a) = out.find(from) else {
        panic!("no {from:?} in:\n{out}");
    };
    let rest = &out[a + from.len()..];
    rest.find(to).map_or(rest, |b| &rest[..b])
}

/// The lcore's rx-intr report: (awake CPU s, wall s, sleeps, wakeups).
fn sleep_report(out: &str) -> (f64, f64, u64, u64) {
    let line = out
        .lines()
        .find(|l| l.contains("rx-intr: awake CPU time"))
        .unwrap_or_else(|| panic!("no rx-intr report in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |after: &str| -> f64 {
        let i = words
            .iter()
            .position(|w| *w == after)
            .unwrap_or_else(|| panic!("no {after:?} in {line:?}"));
        words[i + 1].parse().unwrap_or_else(|_| panic!("{line:?}"))
    };
    let kv = |key: &str| -> u64 {
        words
            .iter()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    (num("time"), num("of"), kv("sleeps="), kv("wakeups="))
}

/// Sends one frame into NIC `from` and times its way out of the other NIC.
fn wake_latency(vm: &Vm, from: usize, seed: u8) -> Duration {
    let to = 1 - from;
    let frame = udp(nic_mac(from), seed, 64);
    let t = Instant::now();
    vm.peer(from).send(&frame).expect("send the wake frame");
    let got = vm
        .peer(to)
        .recv(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the frame into NIC {from} never came out of NIC {to}"));
    let d = t.elapsed();
    assert_eq!(got.len(), frame.len(), "the wake frame came back changed");
    d
}

#[test]
fn rx_intr_lcore_sleeps_when_idle_and_wakes_without_loss() {
    rig::retry_on_emulator_fault(
        "rx_intr_lcore_sleeps_when_idle_and_wakes_without_loss",
        || {
            let tp = format!("testpmd -l 0-1 {} --forward-mode=io --rx-intr", ports());
            let vm = boot(&format!(
                "echo @@idle-begin; {tp} --duration=6; echo \"@@idle rc=$?\"; \
             {tp} --idle-timeout=4 --duration=200; echo \"@@wake rc=$?\""
            ));

            // (1) Idle: no frame at all for 6 s.
            wait(&vm, "@@idle rc=");
            let idle_out = section(&vm.output_so_far(), "@@idle-begin", "@@idle rc=").to_string();
            let (cpu, wall, sleeps, _) = sleep_report(&idle_out);
            eprintln!("idle run: lcore awake {cpu:.3} s of {wall:.3} s, {sleeps} sleeps");
            assert!(wall >= 5.0, "the run was shorter than asked: {wall} s");
            assert!(sleeps >= 1, "the idle lcore never slept:\n{idle_out}");
            assert!(
                cpu < 0.10 * wall,
                "the idle lcore was awake {cpu:.3} s of {wall:.3} s (polling, not sleeping)"
            );

            // (2) Idle, then frames: each chip's RX interrupt wakes the lcore.
            let started = Instant::now();
            loop {
                let so_far = vm.output_so_far();
                let after = &so_far[so_far.find("@@idle rc=").unwrap_or(0)..];
                if after.contains("Forwarding started") {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "the second testpmd did not start:\n{after}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            std::thread::sleep(Duration::from_secs(3));
            let igb = wake_latency(&vm, 0, 1);
            std::thread::sleep(Duration::from_secs(2));
            let e1000e = wake_latency(&vm, 1, 2);
            eprintln!("wake latency: igb {igb:?}, e1000e {e1000e:?}");
            let bound = Duration::from_secs(2);
            assert!(
                igb < bound && e1000e < bound,
                "slow wake: igb {igb:?}, e1000e {e1000e:?}"
            );
            // A paced run both ways: every frame forwarded (the lcore goes back
            // to sleep between the generator's probes and its bursts).
            let (a, b): (TrafficReport, TrafficReport) = std::thread::scope(|s| {
                let a = s.spawn(|| {
                    traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 1000))
                });
                let b = s.spawn(|| {
                    traffic::run(vm.peer(1), vm.peer(0), &quick_traffic(nic_mac(1), 3, 1000))
                });
                (
                    a.join().unwrap().expect("0 -> 1"),
                    b.join().unwrap().expect("1 -> 0"),
                )
            });
            assert!(a.lossless(), "0 -> 1: {}", a.summary());
            assert!(b.lossless(), "1 -> 0: {}", b.summary());
            wait(&vm, "@@wake rc=");
            let out: RunOutput = vm.wait().expect("guest command ends");
            let wake_out = section(&out.output, "@@idle rc=", "@@wake rc=");
            assert!(
                out.output.contains("@@idle rc=0") && out.output.contains("@@wake rc=0"),
                "testpmd failed:\n{}",
                out.output
            );
            let (_, _, sleeps, wakeups) = sleep_report(wake_out);
            assert!(
                sleeps >= 2 && wakeups >= 2,
                "{sleeps} sleeps, {wakeups} wakeups"
            );
            // Exact counts: every frame sent into a port was forwarded out of
            // the other (the wake frame, the probes and the counted frames).
            let sent = [1 + a.sent + a.probes, 1 + b.sent + b.probes];
            let s0 = fwd_stats(wake_out, 0);
            let s1 = fwd_stats(wake_out, 1);
            assert_eq!((s0.0, s1.2), (sent[0], sent[0]), "port 0 RX -> port 1 TX");
            assert_eq!((s1.0, s0.2), (sent[1], sent[1]), "port 1 RX -> port 0 TX");
            assert_eq!((s0.1, s1.1, s0.3, s1.3), (0, 0, 0, 0), "drops");
            assert!(wake_out.contains("Pool: 0 of"), "buffers left:\n{wake_out}");
        },
    );
}

/// How many lines of the output so far contain `needle`.
fn count(vm: &Vm, needle: &str) -> usize {
    vm.output_so_far()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits until `needle` is on at least `n` lines.
fn wait_count(vm: &Vm, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(vm, needle) < n {
        assert!(
            Instant::now() < deadline,
            "no {n}th {needle:?}:\n{}",
            vm.output_so_far()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Takes NIC `nic`'s link down and up with QMP and waits for the event of
/// each (the `downs`th / `ups`th such line).
fn flap(vm: &Vm, nic: usize) {
    let (down, up) = (
        format!("Port {nic}: Link Down"),
        format!("Port {nic}: Link Up"),
    );
    let (d, u) = (count(vm, &down), count(vm, &up));
    vm.set_link(nic, false).expect("QMP set_link off");
    wait_count(vm, &down, d + 1);
    vm.set_link(nic, true).expect("QMP set_link on");
    wait_count(vm, &up, u + 1);
    // One event per change: no second down, and the up after the down.
    assert_eq!(count(vm, &down), d + 1, "{}", vm.output_so_far());
    let out = vm.output_so_far();
    let last_down = out.rfind(&down).unwrap_or(0);
    assert!(
        out[last_down..].contains(&up),
        "the up event before the down one:\n{out}"
    );
}

#[test]
fn link_flap_gives_a_down_and_an_up_event_on_both_chips() {
    rig::retry_on_emulator_fault(
        "link_flap_gives_a_down_and_an_up_event_on_both_chips",
        || {
            // At the prompt: flaps, then every port stopped and started again
            // (its vectors disabled and enabled again on the same eventfds),
            // then flaps and RX wakes once more.
            // The guest kernel's vfio-pci MSI-X lines (/proc/interrupts)
            // after each step, on the console: enabled while started, gone
            // while stopped.
            let irqs = |tag: &str| {
                format!("@echo \"@@irqs-{tag} $(grep -c vfio-msix /proc/interrupts)\" >&2")
            };
            let feed = [
                "start".to_string(),
                "@sleep 25".into(),
                irqs("running"),
                "stop".into(),
                "port stop all".into(),
                "@sleep 1".into(),
                irqs("stopped"),
                "port start all".into(),
                "@sleep 1".into(),
                irqs("restarted"),
                "start".into(),
                "@sleep 40".into(),
                "stop".into(),
                "quit".into(),
            ];
            let feed: Vec<String> = feed
                .iter()
                .map(|c| match c.strip_prefix('@') {
                    Some(shell) => shell.to_string(),
                    None => format!("echo '{c}'"),
                })
                .collect();
            let vm = boot(&format!(
                "({}) | testpmd -i -l 0-1 {} --forward-mode=io --rx-intr",
                feed.join("; "),
                ports()
            ));
            wait_count(&vm, "Forwarding started", 1);
            for nic in 0..2 {
                flap(&vm, nic);
            }
            wait_count(&vm, "Forwarding started", 2);
            // Let the restart's own link-up events land before counting.
            std::thread::sleep(Duration::from_secs(4));
            for nic in 0..2 {
                flap(&vm, nic);
            }
            std::thread::sleep(Duration::from_secs(2));
            let igb = wake_latency(&vm, 0, 7);
            // Back to sleep before the next frame.
            std::thread::sleep(Duration::from_secs(2));
            let e1000e = wake_latency(&vm, 1, 8);
            eprintln!("after the restart, wake latency: igb {igb:?}, e1000e {e1000e:?}");
            let out = vm.wait().expect("guest command ends");
            assert!(out.success(), "testpmd failed:\n{}", out.output);
            assert!(out.output.contains("Pool: 0 of"), "buffers left");
            // Two vectors per port (link, RX queue 0), none while stopped.
            for (tag, n) in [("running", 4), ("stopped", 0), ("restarted", 4)] {
                let line = format!("@@irqs-{tag} {n}");
                assert!(
                    // (after the prompt, on the prompt's line)
                    out.output.lines().any(|l| l.ends_with(&line)),
                    "no {line:?} in:\n{}",
                    out.output
                );
            }
            let reports: Vec<&str> = out
                .output
                .split("Telling cores to stop...")
                .skip(1)
                .collect();
            assert_eq!(reports.len(), 2, "{}", out.output);
            let (_, _, sleeps, wakeups) = sleep_report(reports[1]);
            assert!(
                sleeps >= 2 && wakeups >= 2,
                "{sleeps} sleeps, {wakeups} wakeups"
            );
            // The two wake frames, each forwarded once.
            assert_eq!(fwd_stats(reports[1], 0), (1, 0, 1, 0));
            assert_eq!(fwd_stats(reports[1], 1), (1, 0, 1, 0));
            for nic in 0..2 {
                let ev: Vec<&str> = out
                    .output
                    .lines()
                    .filter(|l| l.starts_with(&format!("Port {nic}: Link ")))
                    .collect();
                assert!(
                    ev.iter().all(|l| *l == format!("Port {nic}: Link Down")
                        || *l == format!("Port {nic}: Link Up - speed 1000 Mbps - full-duplex")),
                    "{ev:?}"
                );
                assert_eq!(
                    ev.iter().filter(|l| l.ends_with("Down")).count(),
                    2,
                    "port {nic}: one down event per flap: {ev:?}"
                );
            }
        },
    );
}
