//! TEMPORARY diagnostic: link flaps then counted traffic, repeated, with
//! QEMU filter-dump captures at both NICs' netdevs.
use rig::testpmd_out::quick_traffic;
use rig::traffic;
use rig::{Vm, VmConfig, nic_mac, nic_pci};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn repro() {
    let (a, b) = (nic_pci(0), nic_pci(1));
    let dpdk = std::env::var("IMPL").is_ok_and(|v| v == "dpdk");
    let script = if dpdk {
        format!(
            "export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu; mkdir -p /var/run /run; chmod 755 /; \
          sleep 1000 | /usr/bin/dpdk-testpmd -l 0-1 -n 1 --no-telemetry --in-memory -a {a} -a {b} -- --forward-mode=io --nb-cores=1 --rxd=512 --txd=512 --total-num-mbufs=8192; echo @@done"
        )
    } else {
        format!("testpmd -l 0-1 -a {a} -a {b} --forward-mode=io --duration=170 --stats-period=40; echo @@done")
    };
    let dir = if dpdk { "dpdk/" } else { "" };
    let ready = if dpdk {
        "Press enter to exit"
    } else {
        "Forwarding started"
    };
    let vm = Vm::start(
        VmConfig {
            timeout: Duration::from_secs(500),
            extra_args: vec![
                "-object".into(),
                format!("filter-dump,id=fd0,netdev=n0,file=/tmp/repro/{dir}n0.pcap,maxlen=128"),
                "-object".into(),
                format!("filter-dump,id=fd1,netdev=n1,file=/tmp/repro/{dir}n1.pcap,maxlen=128"),
            ],
            trace: std::env::var("TRACE").map(|t| t.split(',').map(String::from).collect()).unwrap_or_default(),
            image: if dpdk {
                Some(rig::image::dpdk_image().expect("dpdk image"))
            } else {
                None
            },
            ..VmConfig::default()
        },
        &script,
    )
    .expect("boot");
    vm.wait_for_line(ready, Duration::from_secs(120)).unwrap();
    let cycles: usize = std::env::var("CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut bad = 0;
    for c in 0..cycles {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let t0 = s.spawn(|| traffic::blast(vm.peer(0), nic_mac(0), 1000, &stop));
            let t1 = s.spawn(|| traffic::blast(vm.peer(1), nic_mac(1), 1000, &stop));
            std::thread::sleep(Duration::from_millis(500));
            vm.set_link(0, false).unwrap();
            vm.set_link(1, false).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            vm.set_link(0, true).unwrap();
            vm.set_link(1, true).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            stop.store(true, Ordering::Relaxed);
            (t0.join().unwrap(), t1.join().unwrap())
        });
        let (ab, ba) = std::thread::scope(|s| {
            let x = s.spawn(|| {
                traffic::run(vm.peer(0), vm.peer(1), &quick_traffic(nic_mac(0), 3, 2000))
            });
            let y = s.spawn(|| {
                traffic::run(vm.peer(1), vm.peer(0), &quick_traffic(nic_mac(1), 3, 2000))
            });
            (x.join().unwrap().unwrap(), y.join().unwrap().unwrap())
        });
        eprintln!("@@cycle {c}: 0->1 {} | 1->0 {}", ab.summary(), ba.summary());
        if !ab.lossless() || !ba.lossless() {
            bad += 1;
        }
    }
    eprintln!("@@bad cycles {bad} of {cycles}");
    let out = vm.wait().expect("wait");
    std::fs::write(format!("/tmp/repro/{dir}trace.txt"), &out.trace).unwrap();
}
