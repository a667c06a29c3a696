//! The VM launcher: one implementation for tests, demo and benchmarks.
//!
//! A q35 guest under TCG with an emulated VT-d IOMMU, the NICs a test asks
//! for (by default one igb and one e1000e with fixed MACs), each NIC's netdev
//! a unix stream socket owned by a [`FramePeer`], and an ivshmem-plain device
//! backed by a /dev/shm file; QEMU also serves a QMP monitor socket ([`Vm::qmp`],
//! [`Vm::set_link`]). The guest runs one shell command of the
//! project's binaries and powers off; the host streams its console, enforces
//! a timeout and a heartbeat watchdog, and always ends QEMU and removes every
//! socket and file it made.

use crate::image::{Image, image};
use crate::peer::{FramePeer, PeerSocket};
use crate::shm::ShmFile;
use crate::{Error, workspace_root};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The emulated NIC models the rig offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// Intel 82576 (8086:10c9), QEMU's `igb`.
    Igb,
    /// Intel 82574L (8086:10d3), QEMU's `e1000e`.
    E1000e,
}

impl NicModel {
    fn qemu_name(self) -> &'static str {
        match self {
            NicModel::Igb => "igb",
            NicModel::E1000e => "e1000e",
        }
    }
}

/// A NIC as the guest sees it.
#[derive(Debug, Clone)]
pub struct Nic {
    pub model: NicModel,
    pub mac: [u8; 6],
    /// PCI address in the guest, `0000:00:SS.0`.
    pub pci: String,
}

/// The MAC address of the `index`th NIC: fixed, so tests can assert it.
pub fn nic_mac(index: usize) -> [u8; 6] {
    [
        0x52,
        0x54,
        0x00,
        0x12,
        0x34,
        0x56u8.wrapping_add(index as u8),
    ]
}

/// The guest PCI address of the `index`th NIC (slot 3 onwards).
pub fn nic_pci(index: usize) -> String {
    format!("0000:00:{:02x}.0", 3 + index)
}

/// The guest PCI address of the ivshmem-plain device.
pub const IVSHMEM_PCI: &str = "0000:00:1e.0";

/// How a VM is built.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub nics: Vec<NicModel>,
    /// Size of the ivshmem region in MiB (a power of two), or none.
    pub ivshmem_mib: Option<u32>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// 2 MiB hugepages the guest reserves at boot.
    pub hugepages: u32,
    /// Whole-run limit, boot included.
    pub timeout: Duration,
    /// Limit from QEMU's start to the command's start.
    pub boot_timeout: Duration,
    /// Longest silence of the guest heartbeat before the run is declared stalled.
    pub stall_timeout: Duration,
    /// What of the guest console is echoed to stderr as it arrives.
    pub echo: Echo,
    /// The QEMU binary; `None` looks up `qemu-system-x86_64` in PATH.
    pub qemu: Option<PathBuf>,
    /// QEMU trace events to record (`-trace enable=PATTERN` each), with
    /// wall-clock timestamps, into a file returned in [`RunOutput::trace`].
    /// Empty: no trace.
    pub trace: Vec<String>,
    /// The guest image; `None` builds (or reuses) the base image. The bench
    /// passes `image::dpdk_image()`.
    pub image: Option<Image>,
    /// More QEMU arguments, appended after the rig's own (a third serial
    /// port, `-trace`, `-plugin`...).
    pub extra_args: Vec<String>,
}

impl Default for VmConfig {
    /// One igb, one e1000e, 16 MiB of ivshmem.
    fn default() -> Self {
        VmConfig {
            nics: vec![NicModel::Igb, NicModel::E1000e],
            ivshmem_mib: Some(16),
            memory_mib: 1536,
            cpus: 2,
            hugepages: 256,
            timeout: Duration::from_secs(180),
            boot_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(20),
            echo: Echo::from_env(std::env::var("RIG_QUIET").ok().as_deref()),
            qemu: None,
            trace: Vec::new(),
            image: None,
            extra_args: Vec::new(),
        }
    }
}

/// How much of the guest console a run echoes while it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Everything: kernel, init and the command.
    Console,
    /// Only the command's own output (`RIG_QUIET=1`): the kernel's boot
    /// chatter and init's lines are hidden.
    Output,
    /// Nothing (programs that print their own summary).
    Nothing,
}

impl Echo {
    /// `RIG_QUIET` unset, empty or 0: the whole console; else the
    /// command's output only.
    pub fn from_env(quiet: Option<&str>) -> Echo {
        match quiet {
            None | Some("") | Some("0") => Echo::Console,
            Some(_) => Echo::Output,
        }
    }

    /// Whether a console line is echoed: `in_command` when it comes after
    /// the command's start marker and before its exit line; the marker
    /// lines themselves are not the command's.
    fn shows(self, in_command: bool, marker: bool) -> bool {
        match self {
            Echo::Console => true,
            Echo::Output => in_command && !marker,
            Echo::Nothing => false,
        }
    }
}

/// What a finished guest command left.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The command's exit status in the guest.
    pub status: i32,
    /// What the command printed (stdout and stderr, in order).
    pub output: String,
    /// The whole console, kernel and init included.
    pub console: String,
    /// Wall time from QEMU's start to its end.
    pub elapsed: Duration,
    /// QEMU's trace of the events in [`VmConfig::trace`] (empty without).
    /// Each line starts `PID@SECONDS.MICROS:` in host wall-clock time.
    pub trace: String,
    /// The command's `@@mark TEXT` lines: TEXT and the host wall-clock
    /// time the line arrived, to cut the trace into the guest's phases.
    pub marks: Vec<(String, SystemTime)>,
}

impl RunOutput {
    /// The arrival time of the first mark named `name`.
    pub fn mark(&self, name: &str) -> Option<SystemTime> {
        self.marks.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

const START: &str = "@@rig-start";
const EXIT: &str = "@@rig-exit ";
const MARK: &str = "@@mark ";
/// The x86 kernel command line holds 2048 bytes; leave room for the rest.
const MAX_CMD: usize = 1400;

#[derive(Default)]
struct ConsoleState {
    all: Vec<String>,
    /// Host wall-clock arrival time of each line of `all`.
    times: Vec<SystemTime>,
    /// Index in `all` of the first line of the command's output.
    started: Option<usize>,
    exit: Option<(i32, usize)>,
    eof: bool,
}

struct Console {
    state: Mutex<ConsoleState>,
    cv: Condvar,
}

impl Console {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConsoleState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running guest. Dropping it ends QEMU and removes its files.
pub struct Vm {
    child: Child,
    peers: Vec<FramePeer>,
    nics: Vec<Nic>,
    shm: Option<ShmFile>,
    console: Arc<Console>,
    dir: PathBuf,
    spawned: Instant,
    config: VmConfig,
    heartbeat: Mutex<(u64, Instant)>,
    _slot: Slot,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Finds QEMU (`name`, or `qemu-system-x86_64` in PATH); the error names
/// scripts/setup.
pub fn qemu_binary(name: Option<&Path>) -> Result<PathBuf, Error> {
    let name = name.map_or_else(
        || "qemu-system-x86_64".to_string(),
        |p| p.display().to_string(),
    );
    let found = if name.contains('/') {
        Some(PathBuf::from(&name)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(&name))
                .find(|p| p.is_file())
        })
    };
    found.ok_or_else(|| Error::SetupMissing(format!("QEMU ({name}) is not installed")))
}

impl Vm {
    /// Boots a guest that runs `command` (a shell command line; the
    /// project's binaries are in /bin) and returns once the guest has
    /// connected every NIC's socket. The command may still be running.
    pub fn start(config: VmConfig, command: &str) -> Result<Vm, Error> {
        let qemu = qemu_binary(config.qemu.as_deref())?;
        let Image { kernel, initramfs } = match &config.image {
            Some(img) => img.clone(),
            None => image()?,
        };
        let cmd64 = base64(command.as_bytes());
        if cmd64.len() > MAX_CMD {
            return Err(Error::Qemu(format!(
                "guest command too long for the kernel command line ({} bytes encoded, limit {MAX_CMD})",
                cmd64.len()
            )));
        }
        let slot = Slot::acquire()?;
        let id = format!(
            "rig-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // From here on, `Cleanup` removes the directory on every early return.
        let cleanup = Cleanup(dir.clone());

        let mut args: Vec<String> = vec![
            "-accel".into(),
            "tcg".into(),
            "-machine".into(),
            "q35".into(),
            "-cpu".into(),
            "max".into(),
            "-m".into(),
            format!("{}M", config.memory_mib),
            "-smp".into(),
            config.cpus.to_string(),
            "-nodefaults".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-device".into(),
            "intel-iommu,caching-mode=on".into(),
            "-kernel".into(),
            path_str(&kernel)?,
            "-initrd".into(),
            path_str(&initramfs)?,
            "-append".into(),
            // no_timer_check: under TCG on a loaded host the kernel's
            // IO-APIC timer check can miss its ticks and panic ("timer
            // doesn't work through Interrupt-remapped IO-APIC", seen once
            // with other guests and builds sharing the 2 cores).
            format!(
                "console=ttyS0 intel_iommu=on no_timer_check quiet loglevel=3 panic=-1 rig.hugepages={} rig.cmd={cmd64}",
                config.hugepages
            ),
            "-chardev".into(),
            "stdio,id=con,signal=off".into(),
            "-serial".into(),
            "chardev:con".into(),
            "-chardev".into(),
            format!("file,id=hb,path={}", path_str(&dir.join("heartbeat"))?),
            "-serial".into(),
            "chardev:hb".into(),
            // The QMP monitor a test drives with `Vm::set_link`.
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                path_str(&dir.join("qmp.sock"))?
            ),
        ];
        let trace_file = dir.join("trace.log");
        for ev in &config.trace {
            // Each -trace option without file= sends the trace back to stderr.
            args.push("-trace".into());
            args.push(format!("enable={ev},file={}", path_str(&trace_file)?));
        }
        if !config.trace.is_empty() {
            args.push("-msg".into());
            args.push("timestamp=on".into());
        }
        let mut sockets = Vec::new();
        let mut nics = Vec::new();
        for (i, model) in config.nics.iter().enumerate() {
            let sock = PeerSocket::bind(&dir.join(format!("n{i}.sock")))?;
            let mac = nic_mac(i);
            args.push("-netdev".into());
            args.push(format!(
                "stream,id=n{i},server=off,addr.type=unix,addr.path={}",
                path_str(sock.path())?
            ));
            args.push("-device".into());
            args.push(format!(
                "{},netdev=n{i},mac={},addr=0x{:x}",
                model.qemu_name(),
                mac_str(&mac),
                3 + i
            ));
            nics.push(Nic {
                model: *model,
                mac,
                pci: nic_pci(i),
            });
            sockets.push(sock);
        }
        let shm = match config.ivshmem_mib {
            Some(mib) => {
                let path = PathBuf::from("/dev/shm").join(&id);
                let shm = ShmFile::create(&path, u64::from(mib) << 20)?;
                args.push("-object".into());
                args.push(format!(
                    "memory-backend-file,id=shm0,share=on,mem-path={},size={mib}M",
                    path_str(&path)?
                ));
                args.push("-device".into());
                args.push("ivshmem-plain,memdev=shm0,addr=0x1e".into());
                Some(shm)
            }
            None => None,
        };

        args.extend(config.extra_args.iter().cloned());
        let mut cmd = Command::new(&qemu);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl, which is async-signal-safe; it asks the kernel to kill
        // QEMU if the thread that started it dies, so no QEMU outlives a
        // crashed or killed test.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Qemu(format!("starting {}: {e}", qemu.display())))?;
        let spawned = Instant::now();
        let console = Arc::new(Console {
            state: Mutex::new(ConsoleState::default()),
            cv: Condvar::new(),
        });
        if let Some(out) = child.stdout.take() {
            spawn_console_reader(out, console.clone(), config.echo);
        }
        if let Some(err) = child.stderr.take() {
            spawn_stderr_reader(err, console.clone());
        }
        let mut vm = Vm {
            child,
            peers: Vec::new(),
            nics,
            shm,
            console,
            dir,
            spawned,
            heartbeat: Mutex::new((0, spawned)),
            config,
            _slot: slot,
        };
        std::mem::forget(cleanup); // the Vm's Drop owns the directory now
        for s in sockets {
            match s.accept(Duration::from_secs(10)) {
                Ok(p) => vm.peers.push(p),
                Err(e) => {
                    let tail = vm.console_tail(20);
                    return Err(Error::Qemu(format!("{e}; QEMU said:\n{tail}")));
                }
            }
        }
        Ok(vm)
    }

    /// Boots a guest, runs `command` to its end and returns what it left.
    pub fn run(config: VmConfig, command: &str) -> Result<RunOutput, Error> {
        Vm::start(config, command)?.wait()
    }

    /// The frame peer on the `index`th NIC's wire.
    pub fn peer(&self, index: usize) -> &FramePeer {
        &self.peers[index]
    }

    /// The NICs, in the order of the configuration.
    pub fn nics(&self) -> &[Nic] {
        &self.nics
    }

    /// The folder holding this VM's sockets and heartbeat file.
    pub fn work_dir(&self) -> &Path {
        &self.dir
    }

    /// QEMU's process id.
    pub fn qemu_pid(&self) -> u32 {
        self.child.id()
    }

    /// The host side of the ivshmem region, if the VM has one.
    pub fn shm(&self) -> Option<&ShmFile> {
        self.shm.as_ref()
    }

    /// Runs one QMP command (`{"execute": NAME, "arguments": ARGS}`, ARGS a
    /// JSON object or empty) on QEMU's monitor socket and returns QEMU's
    /// `return` reply line; an `error` reply is an error.
    pub fn qmp(&self, name: &str, args: &str) -> Result<String, Error> {
        qmp_command(&self.dir.join("qmp.sock"), name, args)
    }

    /// Takes the `index`th NIC's link down or up (QMP `set_link` on its
    /// netdev): the NIC sees the link change and frames on its wire are
    /// dropped while it is down.
    pub fn set_link(&self, index: usize, up: bool) -> Result<(), Error> {
        self.qmp(
            "set_link",
            &format!("{{\"name\":\"n{index}\",\"up\":{up}}}"),
        )
        .map(|_| ())
    }

    /// Waits until the command has printed a line containing `needle` and
    /// returns that line. Fails on timeout, guest stall or exit.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Result<String, Error> {
        let deadline = Instant::now() + timeout;
        self.wait_until(Some(deadline), |st| {
            let from = st.started?;
            st.all[from..].iter().find(|l| l.contains(needle)).cloned()
        })
        .map_err(|e| match e {
            Error::Timeout { tail, .. } => Error::Timeout {
                secs: timeout.as_secs(),
                what: format!("waiting for {needle:?}"),
                tail,
            },
            e => e,
        })
    }

    /// The command's output so far.
    pub fn output_so_far(&self) -> String {
        let st = self.console.lock();
        match st.started {
            Some(from) => st.all[from..].join("\n"),
            None => String::new(),
        }
    }

    /// Waits for the command to end and QEMU to power off.
    pub fn wait(mut self) -> Result<RunOutput, Error> {
        let (status, end) = self.wait_until(None, |st| st.exit)?;
        // The guest powers off right after the exit line; give QEMU a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let elapsed = self.spawned.elapsed();
        let trace = if self.config.trace.is_empty() {
            String::new()
        } else {
            // Read after QEMU has ended (above), so its log is flushed.
            let path = self.dir.join("trace.log");
            let raw = fs::read(&path).map_err(|e| Error::io(&path, e))?;
            String::from_utf8_lossy(&raw).into_owned()
        };
        let st = self.console.lock();
        let from = st.started.unwrap_or(end);
        let marks = (from..end)
            .filter_map(|i| {
                let name = st.all[i].trim().strip_prefix(MARK)?;
                Some((name.trim().to_string(), *st.times.get(i)?))
            })
            .collect();
        Ok(RunOutput {
            status,
            output: st.all[from..end].join("\n"),
            console: st.all.join("\n"),
            elapsed,
            trace,
            marks,
        })
    }

    fn console_tail(&self, n: usize) -> String {
        let st = self.console.lock();
        let from = st.all.len().saturating_sub(n);
        st.all[from..].join("\n")
    }

    /// Why this VM failed for reasons of the emulator rather than of the
    /// code under test, if it did: QEMU died of a signal (its assertions
    /// abort), or the guest stopped beating while its command still ran (a
    /// TCG vCPU stall, seen about once in 85 boots on these machines).
    /// Sampling the heartbeat takes 2.5 s, so only when `check_stall`.
    fn emulator_fault(&mut self, check_stall: bool) -> Option<String> {
        if self.console.lock().exit.is_some() {
            return None;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                let st = self.console.lock();
                let said = st
                    .all
                    .iter()
                    .rev()
                    .find(|l| l.starts_with("qemu: "))
                    .cloned()
                    .unwrap_or_default();
                status
                    .signal()
                    .map(|sig| format!("QEMU died of signal {sig}: {said}"))
            }
            Ok(None) if check_stall => {
                let len = |d: &Path| fs::metadata(d.join("heartbeat")).map_or(0, |m| m.len());
                let before = len(&self.dir);
                std::thread::sleep(Duration::from_millis(2500));
                (len(&self.dir) == before)
                    .then(|| "the guest stopped beating while its command ran".to_string())
            }
            Ok(None) | Err(_) => None,
        }
    }

    fn heartbeat_age(&self) -> Duration {
        let len = fs::metadata(self.dir.join("heartbeat"))
            .map(|m| m.len())
            .unwrap_or(0);
        let mut hb = self.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        if len != hb.0 {
            *hb = (len, Instant::now());
        }
        hb.1.elapsed()
    }

    fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut done: impl FnMut(&ConsoleState) -> Option<T>,
    ) -> Result<T, Error> {
        let run_deadline = self.spawned + self.config.timeout;
        let deadline = deadline.map_or(run_deadline, |d| d.min(run_deadline));
        let mut st = self.console.lock();
        loop {
            if let Some(v) = done(&st) {
                return Ok(v);
            }
            let tail = |st: &ConsoleState| {
                let from = st.all.len().saturating_sub(25);
                st.all[from..].join("\n")
            };
            if st.eof {
                return Err(Error::Qemu(format!(
                    "QEMU ended before the guest command finished; console tail:\n{}",
                    tail(&st)
                )));
            }
            let now = Instant::now();
            if st.started.is_none() && now > self.spawned + self.config.boot_timeout {
                return Err(Error::BootTimeout {
                    secs: self.config.boot_timeout.as_secs(),
                    tail: tail(&st),
                });
            }
            if st.started.is_some() {
                drop(st);
                let age = self.heartbeat_age();
                st = self.console.lock();
                if age > self.config.stall_timeout {
                    note_emulator_fault(format!("no heartbeat for {} s", age.as_secs()));
                    return Err(Error::Stalled {
                        secs: age.as_secs(),
                        tail: tail(&st),
                    });
                }
            }
            if now > deadline {
                return Err(Error::Timeout {
                    secs: self.config.timeout.as_secs(),
                    what: "guest command".into(),
                    tail: tail(&st),
                });
            }
            st = self
                .console
                .cv
                .wait_timeout(st, Duration::from_millis(250))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(fault) = self.emulator_fault(std::thread::panicking()) {
            note_emulator_fault(fault);
        } else if std::thread::panicking()
            && let Some(line) = self
                .console
                .lock()
                .all
                .iter()
                .find(|l| l.contains(IMPOSSIBLE_WRITE_BACK))
        {
            // A failed test whose guest driver dropped a write-back the
            // device cannot have written: QEMU's RX status write landing on
            // a re-armed descriptor (docs/silicon.md, "RX write-back"), which
            // loses that frame on the device side. The driver's handling of
            // it is proven by the sim test; the test runs once more.
            note_emulator_fault(format!("QEMU RX write-back fault: {}", line.trim()));
        }
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the process group QEMU leads (process_group(0)
            // made its pid the group id); no memory is involved.
            unsafe {
                libc::kill(-(self.child.id() as i32), libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
        self.peers.clear();
        self.shm = None;
        let _ = fs::remove_dir_all(&self.dir);
    }
}

thread_local! {
    static EMULATOR_FAULT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// `pmd::rx::IMPOSSIBLE_WRITE_BACK`, the words of the driver's warning for a
/// dropped impossible write-back (the rig's library does not link pmd; a
/// unit test keeps the two equal).
pub const IMPOSSIBLE_WRITE_BACK: &str = "impossible write-back";

fn note_emulator_fault(reason: String) {
    EMULATOR_FAULT.with(|f| *f.borrow_mut() = Some(reason));
}

/// Takes the emulator fault the last VM dropped on this thread recorded.
pub fn take_emulator_fault() -> Option<String> {
    EMULATOR_FAULT.with(|f| f.borrow_mut().take())
}

/// Runs a guest test, and runs it once more if it failed because the
/// emulator did (QEMU crashed, or a TCG vCPU stalled: see
/// `Vm::emulator_fault`), saying so on stderr. A failure of the code under
/// test, or a second emulator fault, fails the test as usual.
pub fn retry_on_emulator_fault<T>(test: &str, mut f: impl FnMut() -> T) -> T {
    let _ = take_emulator_fault();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut f)) {
        Ok(v) => v,
        Err(panic) => match take_emulator_fault() {
            Some(reason) => {
                eprintln!("rig: {test}: emulator fault ({reason}); running the test once more");
                f()
            }
            None => std::panic::resume_unwind(panic),
        },
    }
}

/// Removes a directory unless forgotten.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn spawn_console_reader(out: std::process::ChildStdout, console: Arc<Console>, echo: Echo) {
    let _ = std::thread::Builder::new()
        .name("guest-console".into())
        .spawn(move || {
            let mut rd = BufReader::new(out);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match rd.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let now = SystemTime::now();
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\r', '\n'])
                    .replace('\r', "");
                let mut st = console.lock();
                let mut marker = false;
                if line.trim() == START && st.started.is_none() {
                    st.started = Some(st.all.len() + 1);
                    marker = true;
                } else if let Some(code) = line.trim().strip_prefix(EXIT.trim_end())
                    && st.started.is_some()
                    && st.exit.is_none()
                {
                    let code = code.trim().parse().unwrap_or(-1);
                    st.exit = Some((code, st.all.len()));
                    marker = true;
                }
                let in_command = st.started.is_some() && (marker || st.exit.is_none());
                if echo.shows(in_command, marker) {
                    eprintln!("guest| {line}");
                }
                st.all.push(line);
                st.times.push(now);
                console.cv.notify_all();
            }
            let mut st = console.lock();
            st.eof = true;
            console.cv.notify_all();
        });
}

/// QEMU's own messages (warnings, errors) go to the console record too.
fn spawn_stderr_reader(err: std::process::ChildStderr, console: Arc<Console>) {
    let _ = std::thread::Builder::new()
        .name("qemu-stderr".into())
        .spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("qemu| {line}");
                let mut st = console.lock();
                st.all.push(format!("qemu: {line}"));
                st.times.push(SystemTime::now());
                console.cv.notify_all();
            }
        });
}

/// One of a fixed number of VM slots, held across processes with flock so
/// parallel tests do not overload the machine's cores. `RIG_VMS` sets the
/// number of slots (default 1: TCG uses a host thread per vCPU).
struct Slot {
    _file: fs::File,
}

impl Slot {
    fn acquire() -> Result<Slot, Error> {
        let n: usize = std::env::var("RIG_VMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let dir = workspace_root().join("target");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        loop {
            for i in 0..n {
                let path = dir.join(format!("rig-slot-{i}.lock"));
                let f = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?;
                // SAFETY: flock on a file descriptor this function owns; the
                // lock is released when the file is closed (Slot dropped).
                let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                if r == 0 {
                    return Ok(Slot { _file: f });
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One QMP exchange on the monitor socket at `path` (see [`Vm::qmp`]).
fn qmp_command(path: &Path, name: &str, args: &str) -> Result<String, Error> {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let io = |e| Error::io(path, e);
    let stream = UnixStream::connect(path).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut w = stream.try_clone().map_err(io)?;
    let mut rd = BufReader::new(stream);
    // Replies are one JSON object a line; events may come in between.
    let reply = |rd: &mut BufReader<UnixStream>| -> Result<String, Error> {
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).map_err(io)? == 0 {
                return Err(Error::Qemu("QMP closed the connection".into()));
            }
            if line.trim_start().starts_with("{\"event\"") {
                continue;
            }
            if line.contains("\"error\"") {
                return Err(Error::Qemu(format!("QMP {name}: {}", line.trim())));
            }
            if line.contains("\"return\"") {
                return Ok(line.trim().to_string());
            }
        }
    };
    let mut greeting = String::new();
    rd.read_line(&mut greeting).map_err(io)?;
    if !greeting.contains("QMP") {
        return Err(Error::Qemu(format!("no QMP greeting: {greeting:?}")));
    }
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(io)?;
    reply(&mut rd)?;
    let args = if args.trim().is_empty() {
        String::new()
    } else {
        format!(",\"arguments\":{args}")
    };
    w.write_all(format!("{{\"execute\":\"{name}\"{args}}}\n").as_bytes())
        .map_err(io)?;
    reply(&mut rd)
}

fn path_str(p: &Path) -> Result<String, Error> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::Qemu(format!("path is not UTF-8: {}", p.display())))?;
    if s.contains(',') {
        return Err(Error::Qemu(format!(
            "path has a comma QEMU cannot take: {s}"
        )));
    }
    Ok(s.to_string())
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_str(mac: &[u8; 6]) -> String {
    let v: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    v.join(":")
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_write_back_fault_marker_is_the_drivers_warning() {
        assert_eq!(IMPOSSIBLE_WRITE_BACK, pmd::rx::IMPOSSIBLE_WRITE_BACK);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    /// A stand-in for QEMU's monitor: greets, answers each command line
    /// with `replies` in turn (an event line first), records the commands.
    fn fake_qmp(
        name: &str,
        replies: &'static [&'static str],
    ) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        use std::io::Write;
        use std::os::unix::net::UnixListener;
        let path = std::env::temp_dir().join(format!("qmp-{}-{name}.sock", std::process::id()));
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut rd = BufReader::new(s);
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .unwrap();
            let mut got = Vec::new();
            for r in replies {
                let mut line = String::new();
                if rd.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                got.push(line.trim().to_string());
                w.write_all(b"{\"event\": \"NIC_RX_FILTER_CHANGED\", \"data\": {}}\r\n")
                    .unwrap();
                w.write_all(r.as_bytes()).unwrap();
                w.write_all(b"\r\n").unwrap();
            }
            got
        });
        (path, t)
    }

    #[test]
    fn qmp_negotiates_then_sends_the_command() {
        let (path, t) = fake_qmp("ok", &["{\"return\": {}}", "{\"return\": {}}"]);
        let r = qmp_command(&path, "set_link", "{\"name\":\"n0\",\"up\":false}").unwrap();
        assert_eq!(r, "{\"return\": {}}");
        assert_eq!(
            t.join().unwrap(),
            [
                "{\"execute\":\"qmp_capabilities\"}",
                "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"n0\",\"up\":false}}"
            ]
        );
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn qmp_error_replies_are_errors() {
        let (path, t) = fake_qmp(
            "err",
            &[
                "{\"return\": {}}",
                "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device 'n9' not found\"}}",
            ],
        );
        match qmp_command(&path, "set_link", "{\"name\":\"n9\",\"up\":true}") {
            Err(Error::Qemu(m)) => assert!(m.contains("set_link") && m.contains("n9"), "{m}"),
            other => panic!("{other:?}"),
        }
        t.join().unwrap();
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn quiet_echoes_the_command_output_and_hides_the_boot() {
        assert_eq!(Echo::from_env(None), Echo::Console);
        assert_eq!(Echo::from_env(Some("0")), Echo::Console);
        assert_eq!(Echo::from_env(Some("")), Echo::Console);
        assert_eq!(Echo::from_env(Some("1")), Echo::Output);
        let q = Echo::Output;
        assert!(!q.shows(false, false), "kernel chatter before the command");
        assert!(!q.shows(true, true), "the start and exit markers");
        assert!(q.shows(true, false), "the command's own lines");
        assert!(Echo::Console.shows(false, false));
        assert!(!Echo::Nothing.shows(true, false));
    }

    #[test]
    fn nic_addresses_are_fixed() {
        assert_eq!(mac_str(&nic_mac(0)), "52:54:00:12:34:56");
        assert_eq!(mac_str(&nic_mac(1)), "52:54:00:12:34:57");
        assert_eq!(nic_pci(0), "0000:00:03.0");
        assert_eq!(nic_pci(1), "0000:00:04.0");
    }
}
