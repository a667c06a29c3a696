//! devbind: show which driver each network device uses, bind devices to vfio-pci,
//! and give them back to their kernel driver; what dpdk-devbind does, in its words.

use std::process::ExitCode;

use clap::Parser;
use hw::PciAddress;
use hw::sysfs::{PciDeviceInfo, Sysfs, VFIO_PCI};

/// Show and change the drivers of network devices (dpdk-devbind's job).
#[derive(Parser, Debug)]
#[command(name = "devbind", version)]
struct Args {
    /// Print the current status of all network devices (the default).
    #[arg(short, long)]
    status: bool,
    /// Bind the devices to DRIVER (vfio-pci for this driver's use).
    #[arg(short, long, value_name = "DRIVER")]
    bind: Option<String>,
    /// Unbind the devices and hand them back to their kernel driver.
    #[arg(short, long)]
    unbind: bool,
    /// The sysfs root (for tests; /sys normally).
    #[arg(long, default_value = "/sys", hide = true)]
    sysfs: String,
    /// PCI addresses (DDDD:BB:DD.F or BB:DD.F).
    devices: Vec<String>,
}

/// Names of the devices this project knows, as the PCI ID database spells them.
fn device_name(vendor: u16, device: u16) -> &'static str {
    match (vendor, device) {
        (0x8086, 0x10c9) => "82576 Gigabit Network Connection",
        (0x8086, 0x10d3) => "82574L Gigabit Network Connection",
        (0x8086, 0x100e) => "82540EM Gigabit Ethernet Controller",
        (0x1af4, 0x1110) => "Inter-VM shared memory",
        (0x1af4, 0x1000) | (0x1af4, 0x1041) => "Virtio network device",
        _ => "Unknown device",
    }
}

fn line(d: &PciDeviceInfo) -> String {
    let mut s = format!(
        "{} '{} {:04x}'",
        d.addr,
        device_name(d.vendor, d.device),
        d.device
    );
    if !d.interfaces.is_empty() {
        s += &format!(" if={}", d.interfaces.join(","));
    }
    if let Some(drv) = &d.driver {
        s += &format!(" drv={drv}");
    }
    match d.iommu_group {
        Some(g) => s += &format!(" iommu_group={g}"),
        None => s += " iommu_group=none",
    }
    s
}

fn section(title: &str, devs: &[&PciDeviceInfo]) {
    println!("{title}");
    println!("{}", "=".repeat(title.len()));
    if devs.is_empty() {
        println!("<none>");
    }
    for d in devs {
        println!("{}", line(d));
    }
    println!();
}

fn status(sysfs: &Sysfs) -> Result<(), hw::Error> {
    let all = sysfs.devices()?;
    let vfio = |d: &&PciDeviceInfo| d.driver.as_deref() == Some(VFIO_PCI);
    let net: Vec<&PciDeviceInfo> = all.iter().filter(|d| d.is_network()).collect();
    section(
        "Network devices using DPDK-compatible driver",
        &net.iter().copied().filter(vfio).collect::<Vec<_>>(),
    );
    section(
        "Network devices using kernel driver",
        &net.iter()
            .copied()
            .filter(|d| d.driver.is_some() && !vfio(d))
            .collect::<Vec<_>>(),
    );
    section(
        "Other Network devices",
        &net.iter()
            .copied()
            .filter(|d| d.driver.is_none())
            .collect::<Vec<_>>(),
    );
    let other: Vec<&PciDeviceInfo> = all
        .iter()
        .filter(|d| !d.is_network())
        .filter(vfio)
        .collect();
    if !other.is_empty() {
        section("Other devices using DPDK-compatible driver", &other);
    }
    if all.iter().all(|d| d.iommu_group.is_none()) {
        println!("Warning: no device has an IOMMU group: boot with intel_iommu=on to use vfio-pci");
    }
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
    let sysfs = Sysfs::new(&args.sysfs);
    let addrs = args
        .devices
        .iter()
        .map(|s| s.parse::<PciAddress>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if args.bind.is_some() && args.unbind {
        return Err("--bind and --unbind exclude each other".into());
    }
    if (args.bind.is_some() || args.unbind) && addrs.is_empty() {
        return Err("name at least one device (DDDD:BB:DD.F) to bind or unbind".into());
    }
    if let Some(driver) = &args.bind {
        for a in &addrs {
            sysfs.bind(a, driver).map_err(|e| e.to_string())?;
            println!("{a}: bound to {driver}");
        }
    }
    if args.unbind {
        for a in &addrs {
            match sysfs.unbind_to_kernel(a).map_err(|e| e.to_string())? {
                Some(d) => println!("{a}: unbound, now drv={d}"),
                None => println!(
                    "{a}: unbound, no kernel driver took it (load its module, e.g. modprobe igb)"
                ),
            }
        }
    }
    if args.status || (args.bind.is_none() && !args.unbind) {
        status(&sysfs).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devbind: error: {e}");
            ExitCode::FAILURE
        }
    }
}
