//! hwcheck: exercises the hw crate in the QEMU guest, one scenario per subcommand.
//!
//! Each prints `hwcheck: <scenario>: ok: <detail>` and exits 0, or
//! `hwcheck: <scenario>: FAIL: <why>` and exits 1. Negative scenarios also print the
//! error a user would see as `hwcheck: <scenario>: error: <message>`.
//!
//! ```text
//! hwcheck open ADDR...             open, IDs, bus master, BAR0 STATUS, reset
//! hwcheck msix ADDR                MSI-X vectors to eventfds and back
//! hwcheck dma-ivshmem NIC IVSHMEM SEED
//!                                  hugepage DMA memory and the ivshmem BAR2 in one container;
//!                                  writes pattern(SEED) at BAR2 offset 0 for the host to check
//! hwcheck dma-before-open NIC      DMA memory allocated before any device is open
//! hwcheck devmem-fd NIC            a memfd as device memory: mapped, shared with the file
//! hwcheck neg-nodev ADDR           no such device
//! hwcheck neg-malformed TEXT       malformed address
//! hwcheck neg-driver ADDR          device not bound to vfio-pci
//! hwcheck neg-hugepages            no hugepages reserved (sets nr_hugepages to 0, then restores)
//! hwcheck neg-memlock NIC          RLIMIT_MEMLOCK too low without CAP_IPC_LOCK
//! hwcheck neg-iova NIC             IOVA space exhausted under a 23-bit DMA mask
//! hwcheck neg-mmap NIC             region not mmap-able (I/O BAR2, config space) / empty BAR
//! ```

use apps::pattern::pattern;
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use hw::devmem::DeviceMemory;
use hw::dma::DmaMemory;
use hw::vfio::{Container, Device};
use hw::{Error, HugePageSize, PciAddress};

/// STATUS register of both NIC families (82576 and 82574L datasheets).
const STATUS: usize = 0x0008;

type Check = Result<String, String>;

fn addr(s: &str) -> Result<PciAddress, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument: {what}"))
}

fn open(a: &str) -> Result<Device, String> {
    Device::open(&addr(a)?).map_err(|e| format!("open {a}: {e}"))
}

fn check_open(args: &[String]) -> Check {
    if args.is_empty() {
        return Err("name at least one device".into());
    }
    let mut out = Vec::new();
    for a in args {
        let dev = open(a)?;
        let (vendor, device) = dev.ids().map_err(|e| e.to_string())?;
        // SAFETY: no ring or buffer address is ever programmed here (only
        // STATUS is read): the device has nothing to DMA to.
        unsafe { dev.enable_bus_master() }.map_err(|e| e.to_string())?;
        if !dev.bus_master_enabled().map_err(|e| e.to_string())? {
            return Err(format!("{a}: COMMAND.MASTER did not stick"));
        }
        // SAFETY: the BAR is only read (STATUS); nothing aims the device.
        let bar = unsafe { dev.map_bar(0) }.map_err(|e| e.to_string())?;
        let status = bar.read32(STATUS);
        if status == 0xffff_ffff {
            return Err(format!("{a}: STATUS reads all ones"));
        }
        dev.disable_bus_master().map_err(|e| e.to_string())?;
        if dev.bus_master_enabled().map_err(|e| e.to_string())? {
            return Err(format!("{a}: COMMAND.MASTER did not clear"));
        }
        let reset = if dev.can_reset() {
            dev.reset().map_err(|e| e.to_string())?;
            if bar.read32(STATUS) == 0xffff_ffff {
                return Err(format!("{a}: STATUS reads all ones after reset"));
            }
            "ok"
        } else {
            // ivshmem-plain has no FLR/PM reset: the typed refusal is the check.
            match dev.reset() {
                Err(Error::ResetUnsupported { .. }) => "unsupported",
                other => return Err(format!("{a}: reset without a method gave {other:?}")),
            }
        };
        println!(
            "hwcheck: open: {a} id={vendor:04x}:{device:04x} group={} bar0={:#x} status={status:#010x} msix={} reset={reset}",
            dev.iommu_group(),
            bar.len(),
            dev.msix_vectors()
        );
        out.push(a.clone());
    }
    let c = Container::global().map_err(|e| e.to_string())?;
    Ok(format!(
        "{} device(s) in one container, IOVA width {} bits",
        out.len(),
        c.iova_width()
    ))
}

fn check_msix(args: &[String]) -> Check {
    let a = arg(args, 0, "ADDR")?;
    let dev = open(a)?;
    let n = dev.msix_vectors();
    if n == 0 {
        return Err(format!("{a}: no MSI-X vectors"));
    }
    let fds = dev.enable_msix(n).map_err(|e| e.to_string())?;
    if fds.len() != n as usize {
        return Err(format!("{} eventfds for {n} vectors", fds.len()));
    }
    dev.disable_msix().map_err(|e| e.to_string())?;
    match dev.enable_msix(n + 1) {
        Err(e @ Error::MsixVectors { .. }) => println!("hwcheck: msix: error: {e}"),
        other => return Err(format!("enable_msix({}) gave {other:?}", n + 1)),
    }
    Ok(format!("{a}: {n} vectors enabled to eventfds and disabled"))
}

fn check_dma_ivshmem(args: &[String]) -> Check {
    let nic = open(arg(args, 0, "NIC")?)?;
    let ivs = open(arg(args, 1, "IVSHMEM")?)?;
    let seed: u64 = arg(args, 2, "SEED")?
        .parse()
        .map_err(|_| "SEED must be a number".to_string())?;
    let c = Container::global().map_err(|e| e.to_string())?;
    let width = c.iova_width();
    let dma = DmaMemory::allocate(3 << 20, HugePageSize::Size2M).map_err(|e| e.to_string())?;
    if dma.len() != 4 << 20 || dma.iova() % (2 << 20) != 0 {
        return Err(format!(
            "DMA memory len {:#x} iova {:#x}",
            dma.len(),
            dma.iova()
        ));
    }
    for i in 0..(dma.len() / 4096) {
        dma.write::<u64>(i * 4096, seed ^ i as u64);
    }
    for i in 0..(dma.len() / 4096) {
        if dma.read::<u64>(i * 4096) != seed ^ i as u64 {
            return Err(format!("DMA memory page {i} did not read back"));
        }
    }
    let dev = DeviceMemory::from_bar(&ivs, 2).map_err(|e| e.to_string())?;
    let (a0, a1) = (dma.iova(), dma.iova() + dma.len() as u64);
    let (b0, b1) = (dev.iova(), dev.iova() + dev.len() as u64);
    if a0 < b1 && b0 < a1 {
        return Err(format!(
            "IOVAs overlap: {a0:#x}..{a1:#x} and {b0:#x}..{b1:#x}"
        ));
    }
    let limit = 1u128 << width;
    if u128::from(a1) > limit || u128::from(b1) > limit {
        return Err(format!("IOVA beyond the {width}-bit width"));
    }
    let p = pattern(seed);
    // SAFETY: the test seeds the region; no device DMAs into it in this scenario.
    let view = unsafe { dev.host_view() };
    view.write(0, &p);
    let mut back = vec![0u8; p.len()];
    view.read(0, &mut back);
    if back != p {
        return Err("ivshmem BAR2 did not read back the pattern".into());
    }
    let _ = nic.addr();
    Ok(format!(
        "dma iova={a0:#x} len={:#x}; ivshmem bar2 iova={b0:#x} len={:#x}; width={width}; ranges={:x?}",
        dma.len(),
        dev.len(),
        c.iova_ranges()
    ))
}

fn check_dma_before_open(args: &[String]) -> Check {
    let a = arg(args, 0, "NIC")?;
    let c = Container::global().map_err(|e| e.to_string())?;
    if c.iommu_ready() {
        return Err("IOMMU ready before any device was opened".into());
    }
    let dma = DmaMemory::allocate(2 << 20, HugePageSize::Size2M).map_err(|e| e.to_string())?;
    let early = dma.iova();
    let dev = open(a)?;
    if !c.iommu_ready() {
        return Err("IOMMU not ready after opening a device".into());
    }
    let (first, last) = (early, early + dma.len() as u64 - 1);
    if !c
        .iova_ranges()
        .iter()
        .any(|&(s, e)| s <= first && last <= e)
    {
        return Err(format!(
            "early IOVA {early:#x} outside {:x?}",
            c.iova_ranges()
        ));
    }
    drop(dev);
    Ok(format!(
        "allocated at IOVA {early:#x} before {a} opened; mapped when it joined"
    ))
}

fn check_devmem_fd(args: &[String]) -> Check {
    use std::os::unix::fs::FileExt;
    let _dev = open(arg(args, 0, "NIC")?)?;
    let len = 2 << 20;
    // SAFETY: the name is a NUL-terminated literal; flags are valid.
    let fd = unsafe { libc::memfd_create(c"hwcheck-devmem".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    file.set_len(len as u64).map_err(|e| e.to_string())?;
    let mem = DeviceMemory::from_fd(&file, len).map_err(|e| e.to_string())?;
    if mem.len() != len || mem.iova() == 0 {
        return Err(format!("len {:#x} iova {:#x}", mem.len(), mem.iova()));
    }
    // SAFETY: no device DMAs into this region in this scenario.
    let view = unsafe { mem.host_view() };
    view.write(4096, b"devmem through the fd");
    let mut back = [0u8; 21];
    file.read_exact_at(&mut back, 4096)
        .map_err(|e| e.to_string())?;
    if &back != b"devmem through the fd" {
        return Err(format!(
            "the file does not hold what the view wrote: {back:?}"
        ));
    }
    match DeviceMemory::from_fd(&file, 0) {
        Err(Error::EmptyRegion) => {}
        other => return Err(format!("zero length gave {other:?}")),
    }
    Ok(format!(
        "memfd mapped at IOVA {:#x}, {:#x} bytes, shared with the file",
        mem.iova(),
        mem.len()
    ))
}

/// Runs `f`, expects an error matching `want`, prints its message.
fn expect_err<T: std::fmt::Debug>(
    name: &str,
    r: Result<T, Error>,
    want: fn(&Error) -> bool,
    phrases: &[&str],
) -> Check {
    match r {
        Ok(v) => Err(format!("expected an error, got {v:?}")),
        Err(e) => {
            let msg = e.to_string();
            println!("hwcheck: {name}: error: {msg}");
            if !want(&e) {
                return Err(format!("wrong error variant: {e:?}"));
            }
            if let Some(p) = phrases.iter().find(|p| !msg.contains(*p)) {
                return Err(format!("message lacks {p:?}"));
            }
            Ok("the expected error".into())
        }
    }
}

fn neg_nodev(args: &[String]) -> Check {
    let a = addr(arg(args, 0, "ADDR")?)?;
    expect_err(
        "neg-nodev",
        Device::open(&a),
        |e| matches!(e, Error::NoSuchDevice { .. }),
        &["no PCI device", "devbind --status"],
    )
}

fn neg_malformed(args: &[String]) -> Check {
    let s = arg(args, 0, "TEXT")?;
    expect_err(
        "neg-malformed",
        s.parse::<PciAddress>(),
        |e| matches!(e, Error::InvalidPciAddress { .. }),
        &["invalid PCI address", "DDDD:BB:DD.F"],
    )
}

fn neg_driver(args: &[String]) -> Check {
    let a = addr(arg(args, 0, "ADDR")?)?;
    expect_err(
        "neg-driver",
        Device::open(&a),
        |e| matches!(e, Error::NotBoundToVfio { .. }),
        &["not vfio-pci", "devbind --bind vfio-pci"],
    )
}

fn neg_hugepages(_: &[String]) -> Check {
    const NR: &str = "/proc/sys/vm/nr_hugepages";
    let old = std::fs::read_to_string(NR).map_err(|e| format!("{NR}: {e}"))?;
    std::fs::write(NR, "0").map_err(|e| format!("{NR}: {e}"))?;
    let r = expect_err(
        "neg-hugepages",
        DmaMemory::allocate(4 << 20, HugePageSize::Size2M),
        |e| {
            matches!(
                e,
                Error::NoHugepages {
                    needed: 2,
                    free: 0,
                    ..
                }
            )
        },
        &[
            "not enough 2 MiB hugepages",
            "2 needed",
            "echo 2 >",
            "nr_hugepages",
        ],
    );
    std::fs::write(NR, old.trim()).map_err(|e| format!("restore {NR}: {e}"))?;
    r
}

const CAP_IPC_LOCK: u32 = 14;

/// Drops CAP_IPC_LOCK from this process, so that RLIMIT_MEMLOCK applies to root.
fn drop_ipc_lock() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget writes one header and two data structs, which we provide.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    d[0].effective &= !(1 << CAP_IPC_LOCK);
    d[0].permitted &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset reads one header and two data structs.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn neg_memlock(args: &[String]) -> Check {
    let _dev = open(arg(args, 0, "NIC")?)?;
    let lim = libc::rlimit {
        rlim_cur: 64 << 10,
        rlim_max: 64 << 10,
    };
    // SAFETY: setrlimit reads one rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    drop_ipc_lock()?;
    expect_err(
        "neg-memlock",
        DmaMemory::allocate(2 << 20, HugePageSize::Size2M),
        |e| {
            matches!(
                e,
                Error::MemlockLimit {
                    limit: Some(65536),
                    ..
                }
            )
        },
        &["RLIMIT_MEMLOCK", "limit 65536 bytes", "ulimit -l"],
    )
}

fn neg_iova(args: &[String]) -> Check {
    let _dev = open(arg(args, 0, "NIC")?)?;
    let c = Container::global().map_err(|e| e.to_string())?;
    c.set_dma_mask_bits(23);
    let mut held = Vec::new();
    let last = loop {
        match DmaMemory::allocate(2 << 20, HugePageSize::Size2M) {
            Ok(m) if held.len() < 64 => held.push(m),
            Ok(_) => return Err("64 regions fit under an 8 MiB DMA mask".into()),
            Err(e) => break e,
        }
    };
    if held.is_empty() {
        return Err(format!("not even one 2 MiB region fit: {last}"));
    }
    let n = held.len();
    expect_err::<()>(
        "neg-iova",
        Err(last),
        |e| matches!(e, Error::IovaExhausted { width: 23, .. }),
        &["IOVA space exhausted", "23-bit"],
    )
    .map(|s| format!("{s} after {n} regions"))
}

fn neg_mmap(args: &[String]) -> Check {
    let dev = open(arg(args, 0, "NIC")?)?;
    let not_mappable = |e: &Error| matches!(e, Error::RegionNotMappable { .. });
    expect_err(
        "neg-mmap",
        // SAFETY: expected to fail; a BAR mapped by mistake is dropped unused.
        unsafe { dev.map_bar(2) },
        not_mappable,
        &["cannot be mmapped"],
    )?;
    expect_err(
        "neg-mmap",
        // SAFETY: expected to fail; a BAR mapped by mistake is dropped unused.
        unsafe { dev.map_bar(7) },
        not_mappable,
        &["cannot be mmapped"],
    )?;
    expect_err(
        "neg-mmap",
        DeviceMemory::from_bar(&dev, 2),
        not_mappable,
        &["cannot be mmapped"],
    )?;
    expect_err(
        "neg-mmap",
        // SAFETY: expected to fail; a BAR mapped by mistake is dropped unused.
        unsafe { dev.map_bar(5) },
        |e| matches!(e, Error::RegionEmpty { index: 5, .. }),
        &["not implemented"],
    )?;
    Ok("I/O BAR2, config space and ivshmem-style from_bar refused; empty BAR5 refused".into())
}

fn main() -> ExitCode {
    let _ = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("warn,vfio_ioctls=error"),
    )
    .try_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: hwcheck <scenario> [args] (see the source's header)");
        return ExitCode::FAILURE;
    };
    let r = match cmd.as_str() {
        "open" => check_open(rest),
        "msix" => check_msix(rest),
        "dma-ivshmem" => check_dma_ivshmem(rest),
        "dma-before-open" => check_dma_before_open(rest),
        "devmem-fd" => check_devmem_fd(rest),
        "neg-nodev" => neg_nodev(rest),
        "neg-malformed" => neg_malformed(rest),
        "neg-driver" => neg_driver(rest),
        "neg-hugepages" => neg_hugepages(rest),
        "neg-memlock" => neg_memlock(rest),
        "neg-iova" => neg_iova(rest),
        "neg-mmap" => neg_mmap(rest),
        other => Err(format!("unknown scenario {other:?}")),
    };
    match r {
        Ok(detail) => {
            println!("hwcheck: {cmd}: ok: {detail}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("hwcheck: {cmd}: FAIL: {why}");
            ExitCode::FAILURE
        }
    }
}
