//! Fault tests in the QEMU guest (igb at 0000:00:03.0, e1000e at
//! 0000:00:04.0): what a user does to a driver that a clean run never does.
//! Each boot runs a script of several commands; every test ends with the
//! pool's in-use count at 0 and no VT-d fault, neither in the guest
//! kernel's log (`DMAR: [DMA Write ...] Request device [..] fault addr`,
//! dumped with `dmesg` at the end of the script) nor in QEMU's own output.
//!
//! - `killed_testpmd_restarts_clean_and_double_open_is_refused`: testpmd
//!   SIGKILLed mid-traffic and started again in the same boot (the second
//!   open must reset the device the dead process left running); the same
//!   device given twice to l2fwd; a pool too small for the rings.
//! - `open_failure_link_flap_bad_lengths_and_overdrive`: an open that fails
//!   after RX is enabled, under traffic; a link down/up mid-traffic (QMP
//!   `set_link`); frames longer than the MTU and runts; an open-loop
//!   overdrive of the RX ring (its loss seen as ring-full polls and RXO);
//!   a pool drained under traffic (rx_nombuf counted, forwarding
//!   recovering once the TX buffers are reclaimed).

use rig::frames::FrameSpec;
use rig::testpmd_out::{HOST, fwd_stats, quick_traffic, udp};
use rig::traffic::{self, TrafficReport};
use rig::{RunOutput, Vm, VmConfig, nic_mac, nic_pci};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Appended to every script: the guest kernel's VT-d fault lines.
const DMAR_DUMP: &str =
    "echo @@dmar-begin; dmesg | grep -iE 'dmar.*(fault|request device)'; echo @@dmar-end";

fn boot(script: &str) -> Vm {
    Vm::start(
        VmConfig {
            timeout: Duration::from_secs(240),
            ..VmConfig::default()
        },
        script,
    )
    .expect("boot the guest")
}

fn wait(vm: &Vm, needle: &str) -> String {
    vm.wait_for_line(needle, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"))
}

/// Every VT-d fault the run left: the guest kernel's DMAR fault lines and
/// QEMU's own VT-d complaints.
fn vtd_faults(out: &RunOutput) -> Vec<String> {
    let mut faults: Vec<String> = section(&out.output, "@@dmar-begin", "@@dmar-end")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    faults.extend(
        out.console
            .lines()
            .filter(|l| {
                // QEMU's VT-d model reports a blocked DMA as "detected
                // translation failure" / "slpte permission error" and then
                // "New fault is not recorded"; its other messages (a guest
                // register access out of range) are not DMA faults.
                l.starts_with("qemu: ")
                    && (l.contains("fault")
                        || l.contains("translation failure")
                        || l.contains("permission error"))
            })
            .map(str::to_string),
    );
    faults
}

/// The text between the line holding `from` and the next line holding `to`.
fn section<'a>(out: &'a str, from: &str, to: &str) -> &'a str {
    let Some(a) = out.find(from) else {
        return "";
    };
    let rest = &out[a..];
    let start = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let rest = &rest[start..];
    rest.find(to).map_or(rest, |b| &rest[..b])
}

/// The exit status the script echoed as `@@TAG rc=N`.
fn rc(out: &str, tag: &str) -> i32 {
    let head = format!("@@{tag} rc=");
    out.lines()
        .find_map(|l| l.trim().strip_prefix(&head))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {head} line in:\n{out}"))
}

/// The `n`th (from 0) line starting with `prefix`.
fn nth_line<'a>(out: &'a str, prefix: &str, n: usize) -> &'a str {
    out.lines()
        .filter(|l| l.starts_with(prefix))
        .nth(n)
        .unwrap_or_else(|| panic!("no line {n} starting with {prefix:?} in:\n{out}"))
}

/// The number after `key=` in `line`.
fn kv(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Counted frames both ways through a forwarder on NICs 0 and 1.
fn both_ways(vm: &Vm, secs: u64, rate: u64) -> (TrafficReport, TrafficReport) {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            traffic::run(
                vm.peer(0),
                vm.peer(1),
                &quick_traffic(nic_mac(0), secs, rate),
            )
        });
        let b = s.spawn(|| {
            traffic::run(
                vm.peer(1),
                vm.peer(0),
                &quick_traffic(nic_mac(1), secs, rate),
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    (a.expect("0 -> 1 traffic"), b.expect("1 -> 0 traffic"))
}

#[test]
fn killed_testpmd_restarts_clean_and_double_open_is_refused() {
    rig::retry_on_emulator_fault(
        "killed_testpmd_restarts_clean_and_double_open_is_refused",
        || {
            let (a, b) = (nic_pci(0), nic_pci(1));
            let tp = format!("testpmd -l 0-1 -a {a} -a {b} --forward-mode=io");
            let script = format!(
                "{tp} --duration=120 >/tmp/t1 2>&1 & p=$!; i=0; \
             while ! grep -q 'Forwarding started' /tmp/t1 && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done; \
             echo @@first-forwarding; sleep 3; kill -9 $p; wait $p; echo \"@@killed rc=$?\"; sleep 1; \
             echo @@second-begin; {tp} --idle-timeout=3 --duration=90 --log-level=info; echo \"@@second rc=$?\"; \
             l2fwd {a} {a} --seconds 2; echo \"@@twice rc=$?\"; \
             testpmd -l 0-1 -a {b} -a {b} --duration=2; echo \"@@tp-twice rc=$?\"; \
             {tp} --total-num-mbufs=64 --duration=5; echo \"@@few rc=$?\"; {DMAR_DUMP}"
            );
            let vm = boot(&script);
            wait(&vm, "@@first-forwarding");
            // The first testpmd forwards 1 kpps each way; the guest kills it
            // with SIGKILL 3 s in, mid-traffic.
            let stop = AtomicBool::new(false);
            let (s0, s1, back) = std::thread::scope(|s| {
                let t0 = s.spawn(|| traffic::blast(vm.peer(0), nic_mac(0), 1000, &stop));
                let t1 = s.spawn(|| traffic::blast(vm.peer(1), nic_mac(1), 1000, &stop));
                wait(&vm, "@@killed");
                // Frames reach the dead process's still-enabled rings for a while.
                std::thread::sleep(Duration::from_millis(300));
                let back = (vm.peer(0).received(), vm.peer(1).received());
                stop.store(true, Ordering::Relaxed);
                (t0.join().unwrap(), t1.join().unwrap(), back)
            });
            assert!(
                back.0 > 0 && back.1 > 0,
                "the first testpmd forwarded nothing before the kill (sent {s0} / {s1}, back {back:?})"
            );
            wait(&vm, "@@second-begin");
            // Everything out of the NICs from here on is the second testpmd's.
            let base = (vm.peer(0).received(), vm.peer(1).received());
            wait(&vm, "Forwarding started");
            let (ab, ba) = both_ways(&vm, 3, 2000);
            assert!(
                ab.lossless(),
                "after restart, port 0 -> 1: {}",
                ab.summary()
            );
            assert!(
                ba.lossless(),
                "after restart, port 1 -> 0: {}",
                ba.summary()
            );
            wait(&vm, "@@second rc=");
            let out0 = vm.peer(0).received() - base.0;
            let out1 = vm.peer(1).received() - base.1;
            let out = vm.wait().expect("guest script ends");
            let second = section(&out.output, "@@second-begin", "@@second rc=");
            assert_eq!(
                rc(&out.output, "second"),
                0,
                "the restarted testpmd:\n{second}"
            );
            // Exact counts: every frame the restarted testpmd took in on one port
            // left the other and reached the host; nothing else did.
            let (rx0, drop0, tx0, txd0) = fwd_stats(second, 0);
            let (rx1, drop1, tx1, txd1) = fwd_stats(second, 1);
            assert_eq!((drop0, txd0, drop1, txd1), (0, 0, 0, 0), "{second}");
            assert_eq!(
                (rx0, tx1),
                (out1, out1),
                "port 0 in, port 1 out, host saw {out1}:\n{second}"
            );
            assert_eq!(
                (rx1, tx0),
                (out0, out0),
                "port 1 in, port 0 out, host saw {out0}:\n{second}"
            );
            assert!(
                rx0 >= ab.sent + ab.probes && rx1 >= ba.sent + ba.probes,
                "{second}"
            );
            assert!(
                second.contains("Pool: 0 of"),
                "buffers left in use:\n{second}"
            );
            // No VT-d fault: the restarted open stopped the dead process's
            // DMA before enabling bus mastering.
            let faults = vtd_faults(&out);
            assert!(faults.is_empty(), "VT-d faults:\n{}", faults.join("\n"));
            // Each open said how it reset the device.
            for pci in [&a, &b] {
                let said = second.lines().find(|l| {
                    l.contains(pci.as_str())
                        && (l.contains("VFIO device reset done")
                            || l.contains("VFIO offers no device reset"))
                });
                match said {
                    Some(l) => eprintln!("faults: {l}"),
                    None => panic!("{pci}: no line saying how the device was reset:\n{second}"),
                }
            }

            // The same device twice in one process: refused, non-zero exit.
            let twice = section(&out.output, "@@second rc=", "@@twice rc=");
            assert_ne!(rc(&out.output, "twice"), 0, "l2fwd {a} {a}:\n{twice}");
            assert!(
                twice.contains(&format!("PCI device {a} is already open in this process")),
                "l2fwd {a} {a}:\n{twice}"
            );
            assert!(
                !twice.contains("forwarded"),
                "l2fwd must not forward:\n{twice}"
            );

            let tp_twice = section(&out.output, "@@twice rc=", "@@tp-twice rc=");
            assert_ne!(
                rc(&out.output, "tp-twice"),
                0,
                "testpmd -a {b} -a {b}:\n{tp_twice}"
            );
            // testpmd's option check refuses it before any open.
            assert!(
                tp_twice.contains(&format!("port {b} is given twice")),
                "testpmd -a {b} -a {b}:\n{tp_twice}"
            );

            // A pool smaller than the rings: a clear error at start.
            let few = section(&out.output, "@@tp-twice rc=", "@@few rc=");
            assert_ne!(rc(&out.output, "few"), 0, "{few}");
            assert!(
                few.contains("--total-num-mbufs=64 is too few"),
                "testpmd --total-num-mbufs=64:\n{few}"
            );
        },
    )
}

/// A frame shorter than Ethernet's 60-byte minimum (without FCS): the
/// addresses, a local experimental EtherType and a recognisable pattern.
fn runt(dst: [u8; 6], len: usize, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&HOST);
    f.extend_from_slice(&0x88b6u16.to_be_bytes());
    f.extend((0..len - 14).map(|i| tag ^ (i as u8)));
    f
}

#[test]
fn open_failure_link_flap_bad_lengths_and_overdrive() {
    rig::retry_on_emulator_fault("open_failure_link_flap_bad_lengths_and_overdrive", || {
        let (a, b) = (nic_pci(0), nic_pci(1));
        let fwd = format!("pmdcheck fwd --pci {a} --to {b} --idle-ms 3000");
        let script = format!(
            "echo @@begin; pmdcheck open-fail --pci {a} --link-timeout-ms 0 --watch-ms 3000; \
             echo \"@@openfail rc=$?\"; \
             testpmd -l 0-1 -a {a} -a {b} --forward-mode=io --idle-timeout=4 --duration=120; \
             echo \"@@flap rc=$?\"; {fwd} --tag sizes; echo \"@@sizes rc=$?\"; \
             {fwd} --tag overdrive; echo \"@@over rc=$?\"; \
             {fwd} --tag starved --pool-bufs 1100; echo \"@@starved rc=$?\"; {DMAR_DUMP}"
        );
        let vm = boot(&script);

        // (f) The igb's open fails in its link wait (zero timeout; the
        // 82576's link needs autonegotiation), after RX was enabled, while
        // frames arrive; the pool must get every buffer back unwritten.
        //
        // What the guest can and cannot show here: every point where an
        // open can fail comes before the link is up (open restarts
        // autonegotiation, which in QEMU drops STATUS.LU for about 500 ms
        // on both models: checked, the e1000e's open fails a 0 ms and a
        // 1 ms link wait too), and QEMU's NICs write no frame while the
        // link is down. The old code (buffers freed as the rings dropped,
        // no quiesce) then let the VFIO fd close, which makes vfio-pci
        // clear bus mastering at once; so no frame lands in a freed
        // buffer in the microseconds between, and the pattern watch
        // below passes on the old code too. What does tell the two apart
        // is the order the driver reports: the ring's posted buffers are
        // held by the port's DMA fence and given back only after the
        // reset ("device stopped, 512 held buffers returned"); freed at
        // ring drop (the fence reverted to always free) that line is
        // absent (checked in a guest run). The device writing into
        // buffers after a failed open is proven in the simulated device
        // (pmd sim::fence_tests, which fail with that revert).
        wait(&vm, "@@begin");
        let stop = AtomicBool::new(false);
        // Everything out of the NICs after open-fail is testpmd's: taken
        // before the sender is joined (it may block until testpmd drains
        // what the dead igb left in QEMU's queue).
        let base = std::thread::scope(|s| {
            let t = s.spawn(|| traffic::blast(vm.peer(0), nic_mac(0), 300, &stop));
            wait(&vm, "@@openfail rc=");
            let base = (vm.peer(0).received(), vm.peer(1).received());
            stop.store(true, Ordering::Relaxed);
            t.join().unwrap();
            base
        });

        // (a) Link down and up on both NICs mid-traffic.
        wait(&vm, "Forwarding started");
        let (ab, ba) = both_ways(&vm, 2, 2000);
        assert!(
            ab.lossless() && ba.lossless(),
            "before the flap: {} / {}",
            ab.summary(),
            ba.summary()
        );
        let stop = AtomicBool::new(false);
        let during = std::thread::scope(|s| {
            let t0 = s.spawn(|| traffic::blast(vm.peer(0), nic_mac(0), 1000, &stop));
            let t1 = s.spawn(|| traffic::blast(vm.peer(1), nic_mac(1), 1000, &stop));
            std::thread::sleep(Duration::from_millis(500));
            vm.set_link(0, false).expect("QMP set_link n0 off");
            vm.set_link(1, false).expect("QMP set_link n1 off");
            std::thread::sleep(Duration::from_millis(1500));
            vm.set_link(0, true).expect("QMP set_link n0 on");
            vm.set_link(1, true).expect("QMP set_link n1 on");
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::Relaxed);
            (t0.join().unwrap(), t1.join().unwrap())
        });
        // Forwarding recovers: the generator's probes wait for it, then
        // every counted frame comes back.
        let (ab2, ba2) = both_ways(&vm, 3, 2000);
        assert!(ab2.lossless(), "after the flap, 0 -> 1: {}", ab2.summary());
        assert!(ba2.lossless(), "after the flap, 1 -> 0: {}", ba2.summary());
        wait(&vm, "@@flap rc=");
        let flap_out = (
            vm.peer(0).received() - base.0,
            vm.peer(1).received() - base.1,
        );

        // (d) Frames longer than the MTU and runts, between good frames,
        // into both NICs; the good ones must come out intact and in order,
        // no long one at all, a runt at most padded. "Long" is past what
        // the MAC takes at MTU 1500 with LPE off: 1522 bytes with FCS
        // (room for a VLAN tag; RCTL.LPE in the 82576 and 82574 datasheets), so
        // 1519 and more without FCS. QEMU applies the same 1522 limit to
        // the frame without FCS, so 1523 and 1600 bytes are sent.
        wait(&vm, "pmdcheck: ready sizes");
        let mut good = [Vec::new(), Vec::new()];
        let mut runts = [Vec::new(), Vec::new()];
        let mut long = [0u64; 2];
        let mut longs = [Vec::new(), Vec::new()];
        for nic in 0..2 {
            let dst = nic_mac(nic);
            for i in 0..20u16 {
                let g = FrameSpec {
                    src: HOST,
                    sport: 3000 + i,
                    seed: i as u8,
                    ..FrameSpec::udp4(dst, 100 + usize::from(i))
                }
                .build();
                let bad = match i % 4 {
                    0 => udp(dst, i as u8, 1523),
                    1 => udp(dst, i as u8, 1600),
                    2 => runt(dst, 20 + usize::from(i), i as u8),
                    _ => runt(dst, 42, i as u8),
                };
                if bad.len() > 1514 {
                    long[nic] += 1;
                    longs[nic].push(bad.clone());
                } else {
                    runts[nic].push(bad.clone());
                }
                vm.peer(nic).send(&g).expect("send");
                vm.peer(nic).send(&bad).expect("send");
                good[nic].push(g);
            }
        }
        wait(&vm, "@@sizes rc=");
        let mut runts_out = [0usize; 2];
        for nic in 0..2 {
            // What NIC `nic` received left through the other one.
            let got = vm.peer(1 - nic).drain();
            let kept: Vec<&Vec<u8>> = got.iter().filter(|f| good[nic].contains(f)).collect();
            assert_eq!(
                kept.len(),
                good[nic].len(),
                "NIC {nic}: good frames forwarded (of {} frames out)",
                got.len()
            );
            assert!(
                kept.iter().zip(&good[nic]).all(|(k, g)| *k == g),
                "NIC {nic}: order"
            );
            for f in got.iter().filter(|f| !good[nic].contains(f)) {
                assert!(
                    !longs[nic].contains(f) && f.len() <= 1518,
                    "NIC {nic}: a {}-byte frame got through",
                    f.len()
                );
                let padded_runt = runts[nic].iter().any(|r| {
                    f.len() == 60 && f[..r.len()] == r[..] && f[r.len()..].iter().all(|&x| x == 0)
                });
                assert!(
                    padded_runt,
                    "NIC {nic}: a frame that was neither sent nor a padded runt: {f:02x?}"
                );
                runts_out[nic] += 1;
            }
        }

        eprintln!(
            "faults: runts sent {} / {}, delivered padded {} / {}; long frames sent {} / {}, delivered 0 (igb / e1000e)",
            runts[0].len(),
            runts[1].len(),
            runts_out[0],
            runts_out[1],
            long[0],
            long[1]
        );

        // (e) Open-loop overdrive of the igb's RX ring.
        wait(&vm, "pmdcheck: ready overdrive");
        let sent_before = vm.peer(0).sent();
        let out_before = vm.peer(1).received();
        let burst: Vec<Vec<u8>> = (0..32).map(|i| udp(nic_mac(0), i, 64)).collect();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            vm.peer(0).send_batch(&burst).expect("send");
        }
        let overdrive_sent = vm.peer(0).sent() - sent_before;
        wait(&vm, "@@over rc=");
        let overdrive_out = vm.peer(1).received() - out_before;

        // (c) Pool exhaustion under traffic: a pool of 1100 buffers for two
        // 512-descriptor RX rings leaves 76 for everything in flight; the
        // TX ring keeps what it sent until its cleanup, so a back-to-back
        // burst empties the pool and the RX refill fails (rx_nombuf, the
        // frame's buffer given straight back to the device). Once the
        // burst is over the sent buffers are reclaimed and forwarding goes
        // on: every frame sent after it comes out.
        wait(&vm, "pmdcheck: ready starved");
        vm.peer(1).drain();
        let flood: Vec<Vec<u8>> = (0..32).map(|i| udp(nic_mac(0), i, 64)).collect();
        for _ in 0..20 {
            vm.peer(0).send_batch(&flood).expect("send");
        }
        std::thread::sleep(Duration::from_millis(1500));
        let after: Vec<Vec<u8>> = (0..20u16)
            .map(|i| {
                FrameSpec {
                    src: HOST,
                    sport: 5000 + i,
                    seed: i as u8,
                    ..FrameSpec::udp4(nic_mac(0), 90)
                }
                .build()
            })
            .collect();
        for f in &after {
            vm.peer(0).send(f).expect("send");
            std::thread::sleep(Duration::from_millis(20));
        }
        wait(&vm, "@@starved rc=");
        let starved_out = vm.peer(1).drain();

        let out = vm.wait().expect("guest script ends");

        let starved = section(&out.output, "@@over rc=", "@@starved rc=");
        assert_eq!(rc(&out.output, "starved"), 0, "{starved}");
        let st = nth_line(starved, "stats ", 0);
        let nombuf = kv(st, "rx_nombuf");
        let fwd_starved = kv(nth_line(starved, "fwd ", 0), "a_to_b");
        let recovered = after.iter().filter(|f| starved_out.contains(f)).count();
        eprintln!(
            "faults: starved pool: flood 640, forwarded {fwd_starved}, rx_nombuf {nombuf}; \
             {recovered} of {} sent after the flood came out",
            after.len()
        );
        assert!(
            nombuf > 0,
            "the flood must exhaust the pool: {st}\n{starved}"
        );
        assert_eq!(
            recovered,
            after.len(),
            "forwarding must recover once the TX buffers are reclaimed ({} frames out):\n{starved}",
            starved_out.len()
        );
        assert_eq!(kv(nth_line(starved, "pool ", 0), "in_use"), 0, "{starved}");

        let of = section(&out.output, "@@begin", "@@openfail rc=");
        assert_eq!(rc(&out.output, "openfail"), 0, "pmdcheck open-fail:\n{of}");
        assert!(
            of.contains("pmdcheck: open failed:") && of.contains("link"),
            "the open must fail in its link wait:\n{of}"
        );
        let watch = nth_line(of, "watch ", 0);
        eprintln!("faults: open-fail: {watch}");
        assert!(
            kv(watch, "buffers") > 0 && kv(watch, "overwritten") == 0,
            "{of}"
        );
        // Quiesce before free: the 512 buffers the RX ring had posted were
        // held until the failed port's reset, then returned (pmd::fence).
        let held = of
            .lines()
            .find(|l| l.contains(&format!("{a}: device stopped,")))
            .unwrap_or_else(|| {
                panic!("the failed open's posted RX buffers were not held until the device stopped:\n{of}")
            });
        assert!(
            held.contains("device stopped, 512 held buffers returned"),
            "all 512 posted RX buffers held until the reset: {held}"
        );
        assert_eq!(kv(nth_line(of, "pool ", 0), "in_use"), 0, "{of}");
        assert_eq!(kv(nth_line(of, "pool ", 1), "in_use"), 0, "{of}");

        let flap = section(&out.output, "@@openfail rc=", "@@flap rc=");
        assert_eq!(
            rc(&out.output, "flap"),
            0,
            "testpmd across the flap:\n{flap}"
        );
        let (rx0, _, tx0, txd0) = fwd_stats(flap, 0);
        let (rx1, _, tx1, txd1) = fwd_stats(flap, 1);
        assert_eq!((txd0, txd1), (0, 0), "{flap}");
        // Every frame a port received went out of the other. What the host
        // saw of it can be less: a frame the NIC sent while QEMU had its
        // wire down is gone (QEMU still marks the descriptor done; a real
        // MAC would hold it), and whether any fell in that window depends
        // on host timing (seen once on a loaded host).
        assert_eq!(rx0, tx1, "port 0 in, port 1 out:\n{flap}");
        assert_eq!(rx1, tx0, "port 1 in, port 0 out:\n{flap}");
        assert!(
            flap_out.1 <= tx1 && flap_out.0 <= tx0,
            "the host saw more than the ports sent ({flap_out:?}):\n{flap}"
        );
        assert!(
            rx0 < ab.sent + ab2.sent + ab.probes + ab2.probes + during.0,
            "frames sent while the link was down must not all arrive:\n{flap}"
        );
        assert!(flap.contains("Pool: 0 of"), "buffers left in use:\n{flap}");

        let sizes = section(&out.output, "@@flap rc=", "@@sizes rc=");
        assert_eq!(rc(&out.output, "sizes"), 0, "{sizes}");
        assert_eq!(kv(nth_line(sizes, "pool ", 0), "in_use"), 0, "{sizes}");
        // The e1000e counts what it dropped for length in ROC; QEMU's igb
        // counts ROC only in VMDq mode (see filters.rs), so not asserted there.
        let e1000e = nth_line(sizes, "xstats ", 1);
        assert_eq!(kv(e1000e, "rx_oversize_errors"), long[1], "{sizes}");

        let over = section(&out.output, "@@sizes rc=", "@@over rc=");
        assert_eq!(rc(&out.output, "over"), 0, "{over}");
        let fwd_line = nth_line(over, "fwd ", 0);
        let a_to_b = kv(fwd_line, "a_to_b");
        assert_eq!(a_to_b, overdrive_out, "every frame taken in left: {over}");
        let igb = nth_line(over, "stats ", 0);
        let lost = overdrive_sent.saturating_sub(a_to_b);
        let counted = kv(igb, "imissed") + kv(igb, "rx_nombuf");
        eprintln!(
            "faults: overdrive sent {overdrive_sent}, forwarded {a_to_b}, lost {lost}, \
             counted as dropped {counted}; {igb}; {}",
            nth_line(over, "xstats ", 0)
        );
        assert!(a_to_b > 0, "{over}");
        let xs = nth_line(over, "xstats ", 0);
        let ring_full = kv(xs, "rx_q0_ring_full");
        let overruns = kv(xs, "rx_overrun_events");
        // The drops are visible: QEMU's igb drops a frame that finds the
        // ring full and counts it nowhere (MPC, RNBC and RQDPC stay 0:
        // igb_receive_internal in QEMU's hw/net/igb_core.c only sets
        // ICR.RXO when igb_has_rxbufs finds no room, whatever
        // SRRCTL.DROP_EN says, and its RQDPC registers are clear-on-read
        // storage nothing increments; so imissed, MPC + each queue's
        // RQDPC, stays 0 here and only a host test shows RQDPC in it), so
        // the frames lost cannot be counted one by one on this device. What the driver counts is the polls that
        // found the ring full (the last descriptor it gave the device
        // already written back: the device had no room), at any burst
        // size (pmdcheck polls bursts of 32 from a 512 ring, so the old
        // count, a burst taking every device-owned descriptor, stayed 0),
        // and the overrun interrupt cause.
        assert!(
            lost == 0 || (ring_full > 0 && overruns > 0),
            "{lost} of {overdrive_sent} frames lost and not seen: {xs}\n{over}"
        );
        // RX-dropped (imissed + rx_nombuf, as DPDK's testpmd adds them)
        // counts frames: never more than were lost (no double count).
        assert!(
            a_to_b + counted <= overdrive_sent,
            "forwarded {a_to_b} + counted as dropped {counted} > sent {overdrive_sent}: {over}"
        );
        assert_eq!(kv(nth_line(over, "pool ", 0), "in_use"), 0, "{over}");

        let faults = vtd_faults(&out);
        assert!(faults.is_empty(), "VT-d faults:\n{}", faults.join("\n"));
    })
}
