//! The guest image: the project's binaries built statically, the guest
//! kernel unpacked by `scripts/setup`, and an initramfs holding busybox, the
//! five VFIO modules, the init script and those binaries. Each part is
//! rebuilt only when one of its inputs changed. The image also carries
//! Linux's own igb and e1000e drivers ([`LINUX_NIC_MODULES`]), which init
//! does not load: the golden trace test loads them on demand.

use crate::cpio::Newc;
use crate::{Error, workspace_root};
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The modules the guest loads, in dependency order (modules.dep is not
/// shipped in the unpacked package), with their path under kernel/.
const MODULES: [(&str, &str); 5] = [
    ("vfio", "drivers/vfio/vfio.ko.xz"),
    ("vfio_iommu_type1", "drivers/vfio/vfio_iommu_type1.ko.xz"),
    ("irqbypass", "virt/lib/irqbypass.ko.xz"),
    ("vfio-pci-core", "drivers/vfio/pci/vfio-pci-core.ko.xz"),
    ("vfio-pci", "drivers/vfio/pci/vfio-pci.ko.xz"),
];

/// Linux's drivers for the two NICs and what they need, in dependency
/// order (igb depends on dca and i2c-algo-bit; e1000e on nothing outside
/// the kernel image: `depends=` of each module's .modinfo), with their path
/// under kernel/. Copied to /lib/modules/NAME.ko like [`MODULES`].
pub const LINUX_NIC_MODULES: [(&str, &str); 4] = [
    ("dca", "drivers/dca/dca.ko.xz"),
    ("i2c-algo-bit", "drivers/i2c/algos/i2c-algo-bit.ko.xz"),
    ("igb", "drivers/net/ethernet/intel/igb/igb.ko.xz"),
    ("e1000e", "drivers/net/ethernet/intel/e1000e/e1000e.ko.xz"),
];

const INIT: &str = include_str!("init.sh");
const BUSYBOX: &str = "/bin/busybox";
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Paths of a ready guest image.
#[derive(Debug, Clone)]
pub struct Image {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
}

static BUILD: Mutex<Option<Image>> = Mutex::new(None);

/// Builds (or reuses) the guest image. Safe to call from many tests at once:
/// the first caller in a process builds, cargo's own lock orders processes,
/// and the initramfs is written under a temporary name then renamed.
pub fn image() -> Result<Image, Error> {
    let mut cached = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(img) = cached.as_ref() {
        return Ok(img.clone());
    }
    let kernel = guest_kernel()?;
    let bins = build_guest_binaries()?;
    let initramfs = build_initramfs(&kernel, &bins)?;
    let img = Image {
        kernel: kernel.vmlinuz,
        initramfs,
    };
    *cached = Some(img.clone());
    Ok(img)
}

struct Kernel {
    vmlinuz: PathBuf,
    modules: PathBuf,
}

fn guest_kernel() -> Result<Kernel, Error> {
    let dir = workspace_root().join(".cache/guest-kernel");
    let missing = || Error::SetupMissing(format!("no guest kernel under {}", dir.display()));
    let boot = fs::read_dir(dir.join("boot")).map_err(|_| missing())?;
    let vmlinuz = boot
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .ok_or_else(missing)?;
    let version = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .ok_or_else(missing)?
        .to_string();
    let modules = dir.join("lib/modules").join(version).join("kernel");
    if !modules.is_dir() {
        return Err(missing());
    }
    Ok(Kernel { vmlinuz, modules })
}

/// Cargo features for the guest build, from `RIG_GUEST_FEATURES` (e.g.
/// `apps/mmio-count` to count register accesses); empty by default.
pub fn guest_features() -> String {
    std::env::var("RIG_GUEST_FEATURES").unwrap_or_default()
}

/// Where guest binaries are built: a target dir of their own so that the
/// static RUSTFLAGS never invalidate the host build, and one per feature set
/// so that switching features never rebuilds the default image.
pub fn guest_target_dir() -> PathBuf {
    let features: String = guest_features()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if features.is_empty() {
        workspace_root().join("target/guest")
    } else {
        workspace_root().join(format!("target/guest-{features}"))
    }
}

/// Builds every binary of the `apps` package statically for the guest and
/// returns their paths.
fn build_guest_binaries() -> Result<Vec<PathBuf>, Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = guest_target_dir();
    let mut build = Command::new(&cargo);
    build.current_dir(workspace_root()).args([
        "build",
        "--profile",
        "guest",
        "--target",
        TARGET,
        "-p",
        "apps",
        "--bins",
    ]);
    let features = guest_features();
    if !features.is_empty() {
        build.args(["--features", &features]);
    }
    let status = build
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| Error::Build(format!("running {cargo}: {e}")))?;
    if !status.success() {
        return Err(Error::Build(format!(
            "cargo build of the guest binaries: {status}"
        )));
    }
    let dir = target_dir.join(TARGET).join("guest");
    let mut bins: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| Error::Build(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_none()
                && fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    bins.sort();
    if bins.is_empty() {
        return Err(Error::Build(format!("no binaries in {}", dir.display())));
    }
    Ok(bins)
}

fn stamp_of(paths: &[&Path], h: &mut DefaultHasher) -> Result<(), Error> {
    for p in paths {
        let m = fs::metadata(p).map_err(|e| Error::Build(format!("{}: {e}", p.display())))?;
        p.hash(h);
        m.len().hash(h);
        m.modified().ok().hash(h);
    }
    Ok(())
}

fn build_initramfs(kernel: &Kernel, bins: &[PathBuf]) -> Result<PathBuf, Error> {
    let busybox = Path::new(BUSYBOX);
    if !busybox.exists() {
        return Err(Error::SetupMissing(format!(
            "{BUSYBOX} (busybox-static) is missing"
        )));
    }
    let all_modules: Vec<(&str, &str)> = MODULES
        .iter()
        .chain(LINUX_NIC_MODULES.iter())
        .copied()
        .collect();
    let module_paths: Vec<PathBuf> = all_modules
        .iter()
        .map(|(_, p)| kernel.modules.join(p))
        .collect();
    let mut h = DefaultHasher::new();
    INIT.hash(&mut h);
    let mut inputs: Vec<&Path> = vec![busybox];
    inputs.extend(module_paths.iter().map(PathBuf::as_path));
    inputs.extend(bins.iter().map(PathBuf::as_path));
    stamp_of(&inputs, &mut h)?;
    let out = guest_target_dir().join(format!("initramfs-{:016x}.cpio", h.finish()));
    if out.exists() {
        return Ok(out);
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let io = |what: &str, e: std::io::Error| Error::Build(format!("initramfs {what}: {e}"));
    let file = fs::File::create(&tmp).map_err(|e| io("create", e))?;
    let mut a = Newc::new(BufWriter::new(file));
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        a.dir(d).map_err(|e| io("dir", e))?;
    }
    a.char_dev("dev/console", 5, 1)
        .map_err(|e| io("console", e))?;
    a.file("init", 0o755, INIT.as_bytes())
        .map_err(|e| io("init", e))?;
    let bb = fs::read(busybox).map_err(|e| io("busybox", e))?;
    a.file("bin/busybox", 0o755, &bb)
        .map_err(|e| io("busybox", e))?;
    for ((name, _), path) in all_modules.iter().zip(&module_paths) {
        let ko = Command::new(BUSYBOX)
            .args(["xz", "-dc"])
            .arg(path)
            .output()
            .map_err(|e| io("xz", e))?;
        if !ko.status.success() || ko.stdout.is_empty() {
            return Err(Error::Build(format!("decompressing {}", path.display())));
        }
        a.file(&format!("lib/modules/{name}.ko"), 0o644, &ko.stdout)
            .map_err(|e| io("module", e))?;
    }
    for b in bins {
        let name = b.file_name().and_then(|n| n.to_str()).unwrap_or("bin");
        let data = fs::read(b).map_err(|e| io("binary", e))?;
        a.file(&format!("bin/{name}"), 0o755, &data)
            .map_err(|e| io("binary", e))?;
    }
    let w = a.finish().map_err(|e| io("finish", e))?;
    w.into_inner()
        .map_err(|e| io("flush", e.into_error()))?
        .sync_all()
        .map_err(|e| io("sync", e))?;
    fs::rename(&tmp, &out).map_err(|e| io("rename", e))?;
    // Old images are dead weight, but another test process may be booting
    // one right now: remove only those untouched for ten minutes.
    if let Ok(rd) = fs::read_dir(guest_target_dir()) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(600));
            if n.starts_with("initramfs-") && p != out && stale {
                let _ = fs::remove_file(&p);
            }
        }
    }
    Ok(out)
}
