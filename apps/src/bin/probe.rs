//! `probe`: open every igb / e1000e / ivshmem device bound to vfio-pci, read
//! what proves the path to the hardware works, and report it.
//!
//! For each NIC: VFIO container, group and device, bus mastering on, BAR0
//! mapped, STATUS read, the MAC address read from the EEPROM through EERD.
//! For ivshmem: BAR2 mapped into the same container as device memory, and a
//! pattern (`--seed S`) written through a host view so the host can check it.
//!
//! `probe [--seed S]`; exit status 0 when every device answered.

use hw::PciAddress;
use hw::devmem::DeviceMemory;
use hw::mmio::Bar;
use hw::sysfs::Sysfs;
use hw::vfio::Device;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const INTEL: u16 = 0x8086;
const IGB_82576: u16 = 0x10c9;
const E1000E_82574L: u16 = 0x10d3;
const REDHAT: u16 = 0x1af4;
const IVSHMEM: u16 = 0x1110;

/// Device Status register (same offset on the 82576 and the 82574L).
const STATUS: usize = 0x0008;
/// EEPROM Read register; the 82576 and 82574L share its layout.
const EERD: usize = 0x0014;
const EERD_START: u32 = 1 << 0;
const EERD_DONE: u32 = 1 << 1;
const EERD_ADDR_SHIFT: u32 = 2;
const EERD_DATA_SHIFT: u32 = 16;

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Hw(#[from] hw::Error),
    #[error("{0}: EEPROM word {1} read did not complete (EERD.DONE never set)")]
    EerdTimeout(PciAddress, u32),
    #[error("--seed needs a number")]
    Usage,
}

fn eeprom_word(addr: PciAddress, bar: &Bar, word: u32) -> Result<u16, ProbeError> {
    bar.write32(EERD, (word << EERD_ADDR_SHIFT) | EERD_START);
    let deadline = Instant::now() + Duration::from_millis(100);
    loop {
        let v = bar.read32(EERD);
        if v & EERD_DONE != 0 {
            return Ok((v >> EERD_DATA_SHIFT) as u16);
        }
        if Instant::now() > deadline {
            return Err(ProbeError::EerdTimeout(addr, word));
        }
        std::hint::spin_loop();
    }
}

fn probe_nic(addr: PciAddress, ids: (u16, u16)) -> Result<(), ProbeError> {
    let dev = Device::open(&addr)?;
    dev.enable_bus_master()?;
    let bar = dev.map_bar(0)?;
    let status = bar.read32(STATUS);
    let mut mac = [0u8; 6];
    for w in 0..3u32 {
        let v = eeprom_word(addr, &bar, w)?.to_le_bytes();
        mac[2 * w as usize] = v[0];
        mac[2 * w as usize + 1] = v[1];
    }
    let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "probe: nic {addr} {:04x}:{:04x} group={} status={status:#010x} mac={} bus_master={}",
        ids.0,
        ids.1,
        dev.iommu_group(),
        mac.join(":"),
        dev.bus_master_enabled()?
    );
    Ok(())
}

fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn probe_ivshmem(addr: PciAddress, seed: u64) -> Result<(), ProbeError> {
    let dev = Device::open(&addr)?;
    let mem = DeviceMemory::from_bar(&dev, 2)?;
    // SAFETY: the probe is the only user of this region; the view is used to
    // seed a test pattern the host reads back, not as packet memory.
    let view = unsafe { mem.host_view() };
    let data = pattern(seed);
    view.write(0, &data);
    let mut back = vec![0u8; data.len()];
    view.read(0, &mut back);
    println!(
        "probe: ivshmem {addr} bar2 {} bytes iova={:#x} pattern={}",
        mem.len(),
        mem.iova(),
        if back == data { "written" } else { "MISMATCH" }
    );
    Ok(())
}

fn run() -> Result<bool, ProbeError> {
    let mut args = std::env::args().skip(1);
    let mut seed = 1u64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or(ProbeError::Usage)?
            }
            _ => return Err(ProbeError::Usage),
        }
    }
    let mut ok = true;
    let mut found = 0;
    for d in Sysfs::default().devices()? {
        let r = match (d.vendor, d.device) {
            (INTEL, IGB_82576 | E1000E_82574L) => probe_nic(d.addr, (d.vendor, d.device)),
            (REDHAT, IVSHMEM) => probe_ivshmem(d.addr, seed),
            _ => continue,
        };
        found += 1;
        if let Err(e) = r {
            println!("probe: {}: {e}", d.addr);
            ok = false;
        }
    }
    if found == 0 {
        println!("probe: no igb, e1000e or ivshmem device found");
        ok = false;
    }
    println!("probe: done");
    Ok(ok)
}

fn main() -> ExitCode {
    env_logger::init();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(ProbeError::Usage) => {
            eprintln!("usage: probe [--seed N]");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::FAILURE
        }
    }
}
