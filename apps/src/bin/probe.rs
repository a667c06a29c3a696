//! `probe`: open every igb / e1000e / ivshmem device bound to vfio-pci, read
//! what proves the path to the hardware works, and report it.
//!
//! For each NIC: VFIO container, group and device, bus mastering on, BAR0
//! mapped, STATUS read, the MAC address read from the EEPROM through EERD.
//! For ivshmem: BAR2 mapped into the same container as device memory, and a
//! pattern (`--seed S`) written through a host view so the host can check it.
//!
//! `probe [--seed S]`; exit status 0 when every device answered.

use apps::pattern::pattern;
use hw::PciAddress;
use hw::devmem::DeviceMemory;
use hw::sysfs::Sysfs;
use hw::vfio::Device;
use pmd::mac::{Mac, regs::STATUS};
use pmd::port::{Support, find_driver};
use std::process::ExitCode;
use std::sync::Arc;

const REDHAT: u16 = 0x1af4;
const IVSHMEM: u16 = 0x1110;

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Hw(#[from] hw::Error),
    #[error("{0}: EEPROM word {1} read did not complete (EERD.DONE never set)")]
    EerdTimeout(PciAddress, u32),
    #[error("--seed needs a number")]
    Usage,
}

/// A NIC the drivers know: the MAC read through EERD (the register
/// layout lives once, in pmd's MAC block), not through the driver's
/// RAR fallback, so a broken EEPROM read shows here.
fn probe_nic(addr: PciAddress, ids: (u16, u16), driver: &str) -> Result<(), ProbeError> {
    let dev = Device::open(&addr)?;
    // SAFETY: probe only reads registers and uses EERD (an EEPROM read);
    // it programs no ring or buffer address, so the device is aimed at
    // nothing.
    unsafe { dev.enable_bus_master() }?;
    // SAFETY: as above: reads, and EERD writes, only.
    let bar = Arc::new(unsafe { dev.map_bar(0) }?);
    let status = bar.read32(STATUS);
    let regs = Mac::new(addr, bar);
    let mut mac = [0u8; 6];
    for w in 0..3u32 {
        let v = regs
            .eeprom_word(w)
            .ok_or(ProbeError::EerdTimeout(addr, w))?
            .to_le_bytes();
        mac[2 * w as usize..2 * w as usize + 2].copy_from_slice(&v);
    }
    println!(
        "probe: nic {addr} {:04x}:{:04x} driver={driver} group={} status={status:#010x} mac={} bus_master={}",
        ids.0,
        ids.1,
        dev.iommu_group(),
        pmd::mac::format_mac(&mac),
        dev.bus_master_enabled()?
    );
    Ok(())
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
        let r = match (find_driver(d.vendor, d.device), (d.vendor, d.device)) {
            (Some((drv, id)), ids) if matches!(id.support, Support::Yes) => {
                probe_nic(d.addr, ids, drv.name)
            }
            (_, (REDHAT, IVSHMEM)) => probe_ivshmem(d.addr, seed),
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
