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
static BUILD_DPDK: Mutex<Option<Image>> = Mutex::new(None);
static BUILD_TELEMETRY: Mutex<Option<Image>> = Mutex::new(None);

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
    let initramfs = build_initramfs(&kernel, &bins, &Extra::default())?;
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

fn build_initramfs(kernel: &Kernel, bins: &[PathBuf], extra: &Extra) -> Result<PathBuf, Error> {
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
    extra.stamp(&mut h)?;
    let out = guest_target_dir().join(format!("initramfs{}-{:016x}.cpio", extra.tag, h.finish()));
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
    extra.write(&mut a).map_err(|e| io("extra files", e))?;
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

/// Files an image variant adds to the base initramfs: host files copied to
/// the same path (symbolic links kept as links), and generated files.
#[derive(Debug, Default)]
struct Extra {
    /// Part of the initramfs file name (`-dpdk`), empty for the base image.
    tag: &'static str,
    /// Absolute host paths, each copied to the same path in the image.
    host_files: Vec<PathBuf>,
    /// (path in the image, mode, contents).
    generated: Vec<(String, u32, Vec<u8>)>,
}

/// Directories the base image already has.
const BASE_DIRS: [&str; 7] = ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"];

/// One entry of a host file's symlink chain, as it goes into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chained {
    Link { path: PathBuf, target: PathBuf },
    File(PathBuf),
}

/// `path` and every link it goes through to a regular file: `libx.so.23`
/// -> `libx.so.23.0` gives a link entry and a file entry. Links in the
/// parent directories (a merged /usr) are followed silently: the file keeps
/// the path it was named by.
fn symlink_chain(path: &Path) -> std::io::Result<Vec<Chained>> {
    let mut out = Vec::new();
    let mut p = real_parent(path)?;
    for _ in 0..16 {
        let meta = fs::symlink_metadata(&p)?;
        if !meta.file_type().is_symlink() {
            out.push(Chained::File(p));
            return Ok(out);
        }
        let target = fs::read_link(&p)?;
        let next = if target.is_absolute() {
            target.clone()
        } else {
            p.parent().unwrap_or(Path::new("/")).join(&target)
        };
        out.push(Chained::Link { path: p, target });
        p = real_parent(&next)?;
    }
    Err(std::io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// `p` with its parent directories' links resolved (on a merged-/usr host
/// `/lib/x86_64-linux-gnu/libc.so.6` is `/usr/lib/x86_64-linux-gnu/libc.so.6`):
/// one file, one copy in the image, so that a DPDK plugin reached as a
/// library and as a plugin is loaded once.
fn real_parent(p: &Path) -> std::io::Result<PathBuf> {
    match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => Ok(fs::canonicalize(d)?.join(n)),
        _ => Ok(p.to_path_buf()),
    }
}

/// Host directories that are links (merged /usr) and that the image
/// mirrors as links, so that paths named through them resolve.
const MERGED_DIRS: [&str; 2] = ["/lib/x86_64-linux-gnu", "/lib64"];

fn image_path(p: &Path) -> Result<String, std::io::Error> {
    let s = p
        .to_str()
        .ok_or_else(|| std::io::Error::other(format!("{} is not UTF-8", p.display())))?;
    Ok(s.trim_start_matches('/').to_string())
}

impl Extra {
    fn chains(&self) -> std::io::Result<Vec<Chained>> {
        let mut all = Vec::new();
        for f in &self.host_files {
            for c in symlink_chain(f)? {
                if !all.contains(&c) {
                    all.push(c);
                }
            }
        }
        Ok(all)
    }

    fn stamp(&self, h: &mut DefaultHasher) -> Result<(), Error> {
        self.tag.hash(h);
        self.generated.hash(h);
        let chains = self
            .chains()
            .map_err(|e| Error::Build(format!("image files: {e}")))?;
        for c in &chains {
            match c {
                Chained::Link { path, target } => (path, target).hash(h),
                Chained::File(p) => stamp_of(&[p.as_path()], h)?,
            }
        }
        Ok(())
    }

    fn write<W: std::io::Write>(&self, a: &mut Newc<W>) -> std::io::Result<()> {
        let chains = self.chains()?;
        let mut dirs = std::collections::BTreeSet::new();
        let mut paths: Vec<String> = self.generated.iter().map(|g| g.0.clone()).collect();
        for c in &chains {
            let (Chained::Link { path, .. } | Chained::File(path)) = c;
            paths.push(image_path(path)?);
        }
        for p in &paths {
            let mut at = Path::new(p.as_str()).parent();
            while let Some(d) = at.filter(|d| !d.as_os_str().is_empty()) {
                if let Some(d) = d.to_str().filter(|d| !BASE_DIRS.contains(d)) {
                    dirs.insert(d.to_string());
                }
                at = d.parent();
            }
        }
        // Sorted, a parent comes before its children.
        for d in &dirs {
            a.dir(d)?;
        }
        for d in MERGED_DIRS {
            if let Ok(real) = fs::canonicalize(d)
                && real != Path::new(d)
                && let Some(r) = real.to_str()
            {
                a.symlink(d.trim_start_matches('/'), r)?;
            }
        }
        for c in &chains {
            match c {
                Chained::Link { path, target } => {
                    let t = target
                        .to_str()
                        .ok_or_else(|| std::io::Error::other("link target is not UTF-8"))?;
                    a.symlink(&image_path(path)?, t)?;
                }
                Chained::File(p) => {
                    let data = fs::read(p)
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?;
                    let mode = fs::metadata(p)?.permissions().mode() & 0o777;
                    a.file(&image_path(p)?, mode, &data)?;
                }
            }
        }
        for (path, mode, data) in &self.generated {
            a.file(path, *mode, data)?;
        }
        Ok(())
    }
}

/// DPDK's testpmd from Debian's `dpdk-dev` package.
pub const DPDK_TESTPMD: &str = "/usr/bin/dpdk-testpmd";
/// Where Debian's `dpdk` package keeps the PMD plugins (EAL loads every
/// plugin in this directory at start).
pub const DPDK_PMD_DIR: &str = "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0";
/// The plugins testpmd needs for the rig's NICs.
pub const DPDK_PMDS: [&str; 4] = [
    "librte_net_e1000.so",
    "librte_bus_pci.so",
    "librte_bus_vdev.so",
    "librte_mempool_ring.so",
];
/// glibc dlopen()s it (pthread_cancel at port close); ldd does not list it.
const LIBGCC_S: [&str; 2] = [
    "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
];
/// The bench's guest side: a command loop on the third serial port.
const BENCH_GUEST: &str = include_str!("bench-guest.sh");

/// The shared libraries `ldd` names for `bin` (the dynamic loader
/// included, the vDSO not).
pub fn ldd_libraries(ldd_output: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in ldd_output.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            let p = PathBuf::from(p);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn ldd(bin: &Path) -> Result<Vec<PathBuf>, Error> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| Error::Build(format!("running ldd {}: {e}", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("not found") {
        return Err(Error::Build(format!(
            "ldd {}: {}{}",
            bin.display(),
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(ldd_libraries(&text))
}

/// The files of DPDK's testpmd for the guest: the binary, the four PMD
/// plugins (with their .so -> .so.23 -> .so.23.0 links), every library
/// `ldd` names for them, libgcc_s and the dynamic loader.
fn dpdk_files() -> Result<Vec<PathBuf>, Error> {
    let testpmd = Path::new(DPDK_TESTPMD);
    if !testpmd.is_file() {
        return Err(Error::SetupMissing(format!(
            "{DPDK_TESTPMD} (Debian's dpdk-dev) is missing"
        )));
    }
    let mut files = vec![testpmd.to_path_buf()];
    let mut objects = vec![testpmd.to_path_buf()];
    for pmd in DPDK_PMDS {
        let link = Path::new(DPDK_PMD_DIR).join(pmd);
        if !link.exists() {
            return Err(Error::SetupMissing(format!(
                "{} (Debian's dpdk) is missing",
                link.display()
            )));
        }
        files.push(link.clone());
        files.push(Path::new(DPDK_PMD_DIR).join(format!("{pmd}.23")));
        objects.push(fs::canonicalize(&link).map_err(|e| Error::io(&link, e))?);
    }
    for o in &objects {
        for lib in ldd(o)? {
            if !files.contains(&lib) {
                files.push(lib);
            }
        }
    }
    let gcc = LIBGCC_S
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| Error::SetupMissing("libgcc_s.so.1 is missing".into()))?;
    files.push(gcc.to_path_buf());
    files.retain(|f| f.exists());
    Ok(files)
}

/// The bench's image: the base image plus DPDK's testpmd with everything it
/// loads, and the bench's guest command loop (`/bin/bench-guest`). Opt-in:
/// the base image stays small and quick to build.
pub fn dpdk_image() -> Result<Image, Error> {
    let mut cached = BUILD_DPDK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(img) = cached.as_ref() {
        return Ok(img.clone());
    }
    let kernel = guest_kernel()?;
    let bins = build_guest_binaries()?;
    let extra = Extra {
        tag: "-dpdk",
        host_files: dpdk_files()?,
        generated: vec![(
            "bin/bench-guest".to_string(),
            0o755,
            BENCH_GUEST.as_bytes().to_vec(),
        )],
    };
    let initramfs = build_initramfs(&kernel, &bins, &extra)?;
    let img = Image {
        kernel: kernel.vmlinuz,
        initramfs,
    };
    *cached = Some(img.clone());
    Ok(img)
}

/// Debian's python3 (the interpreter `dpdk-telemetry.py` names).
pub const PYTHON: &str = "/usr/bin/python3";
/// DPDK's telemetry client from Debian's `dpdk-dev` package.
pub const DPDK_TELEMETRY_PY: &str = "/usr/bin/dpdk-telemetry.py";

/// The stdlib modules `python3 -S -v` loads to run `script` (here with
/// `-l`: every import of the script happens at its top), as `.py`
/// sources with their cached `.pyc`, and the extension modules, from
/// python's `# code object from '…'` / `# extension module … from '…'`
/// lines.
pub fn python_modules(verbose_output: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in verbose_output.lines() {
        let Some(rest) = line.strip_prefix("# code object from '").or_else(|| {
            line.strip_prefix("# extension module '")
                .and_then(|r| r.split_once(" from '").map(|(_, p)| p))
        }) else {
            continue;
        };
        let Some(path) = rest.strip_suffix('\'') else {
            continue;
        };
        let path = PathBuf::from(path);
        let mut add = |p: PathBuf| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        // .../pkg/__pycache__/name.cpython-311.pyc: python uses a cached
        // file only next to its source, .../pkg/name.py.
        if let (Some(cache), Some(name)) =
            (path.parent(), path.file_name().and_then(|n| n.to_str()))
            && cache.file_name().is_some_and(|n| n == "__pycache__")
            && let (Some(dir), Some(module)) = (cache.parent(), name.split('.').next())
        {
            add(dir.join(format!("{module}.py")));
        }
        add(path);
    }
    out
}

/// What `dpdk-telemetry.py` needs in the guest: the script, python and
/// its shared libraries, the stdlib modules it loads (and `os.py`, the
/// landmark python finds its library by), the extension modules and their
/// libraries.
fn telemetry_files() -> Result<Vec<PathBuf>, Error> {
    for f in [PYTHON, DPDK_TELEMETRY_PY] {
        if !Path::new(f).is_file() {
            return Err(Error::SetupMissing(format!(
                "{f} (Debian's python3 / dpdk-dev) is missing"
            )));
        }
    }
    let v = Command::new(PYTHON)
        .args(["-S", "-v", DPDK_TELEMETRY_PY, "-l"])
        .env_clear()
        .env(
            "RUNTIME_DIRECTORY",
            std::env::temp_dir().join("rig-no-dpdk"),
        )
        .output()
        .map_err(|e| Error::Build(format!("running {PYTHON}: {e}")))?;
    let mut files = vec![PathBuf::from(PYTHON), PathBuf::from(DPDK_TELEMETRY_PY)];
    let python = fs::canonicalize(PYTHON).map_err(|e| Error::io(Path::new(PYTHON), e))?;
    let mut objects = vec![python.clone()];
    let modules = python_modules(&String::from_utf8_lossy(&v.stderr));
    if !v.status.success() || modules.is_empty() {
        return Err(Error::Build(format!(
            "{PYTHON} -v {DPDK_TELEMETRY_PY} -l: {}",
            String::from_utf8_lossy(&v.stderr)
        )));
    }
    let lib = modules
        .iter()
        .find_map(|m| {
            m.ancestors()
                .find(|a| {
                    a.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("python3."))
                })
                .map(Path::to_path_buf)
        })
        .ok_or_else(|| Error::Build("no python3.X library directory in python -v".into()))?;
    // Encodings python may pick for a console without a UTF-8 locale.
    for extra in ["os.py", "encodings/ascii.py", "encodings/latin_1.py"] {
        files.push(lib.join(extra));
    }
    for m in modules {
        if m.extension().is_some_and(|e| e == "so") {
            objects.push(m.clone());
        }
        files.push(m);
    }
    for o in &objects {
        for l in ldd(o)? {
            if !files.contains(&l) {
                files.push(l);
            }
        }
    }
    files.retain(|f| f.exists());
    Ok(files)
}

/// The telemetry test's guest side (`/bin/telemetry-guest`).
const TELEMETRY_GUEST: &str = include_str!("telemetry-guest.sh");

/// The telemetry test's image: the base image plus python3 with only the
/// stdlib `dpdk-telemetry.py` loads, the script, and the test's guest side
/// (opt-in like [`dpdk_image`]: the base image stays small).
pub fn telemetry_image() -> Result<Image, Error> {
    let mut cached = BUILD_TELEMETRY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(img) = cached.as_ref() {
        return Ok(img.clone());
    }
    let kernel = guest_kernel()?;
    let bins = build_guest_binaries()?;
    let extra = Extra {
        tag: "-py",
        host_files: telemetry_files()?,
        generated: vec![(
            "bin/telemetry-guest".to_string(),
            0o755,
            TELEMETRY_GUEST.as_bytes().to_vec(),
        )],
    };
    let initramfs = build_initramfs(&kernel, &bins, &extra)?;
    let img = Image {
        kernel: kernel.vmlinuz,
        initramfs,
    };
    *cached = Some(img.clone());
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_verbose_output_gives_sources_caches_and_extensions() {
        let text = "import _frozen_importlib # frozen\n\
                    # code object from '/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc'\n\
                    import 'json' # <SourceFileLoader>\n\
                    # code object from '/usr/lib/python3.11/__pycache__/glob.cpython-311.pyc'\n\
                    # extension module 'readline' loaded from '/usr/lib/python3.11/lib-dynload/readline.cpython-311-x86_64-linux-gnu.so'\n";
        assert_eq!(
            python_modules(text),
            [
                "/usr/lib/python3.11/json/__init__.py",
                "/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc",
                "/usr/lib/python3.11/glob.py",
                "/usr/lib/python3.11/__pycache__/glob.cpython-311.pyc",
                "/usr/lib/python3.11/lib-dynload/readline.cpython-311-x86_64-linux-gnu.so",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn ldd_output_gives_absolute_paths_only() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f9d)\n\
                    \tlibrte_eal.so.23 => /lib/x86_64-linux-gnu/librte_eal.so.23 (0x1)\n\
                    \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f9d)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f9d5c667000)\n";
        assert_eq!(
            ldd_libraries(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libm.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/librte_eal.so.23"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn a_symlink_chain_ends_at_the_file() {
        let dir = std::env::temp_dir().join(format!("rig-chain-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("libx.so.1.0"), b"elf").unwrap();
        std::os::unix::fs::symlink("libx.so.1.0", dir.join("libx.so.1")).unwrap();
        std::os::unix::fs::symlink("libx.so.1", dir.join("libx.so")).unwrap();
        let c = symlink_chain(&dir.join("libx.so")).unwrap();
        assert_eq!(
            c,
            vec![
                Chained::Link {
                    path: dir.join("libx.so"),
                    target: "libx.so.1".into()
                },
                Chained::Link {
                    path: dir.join("libx.so.1"),
                    target: "libx.so.1.0".into()
                },
                Chained::File(dir.join("libx.so.1.0")),
            ]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
