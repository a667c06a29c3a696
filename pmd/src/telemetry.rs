//! DPDK's telemetry v2 protocol on a unix `SOCK_SEQPACKET` socket, so
//! DPDK's own tools (`dpdk-telemetry.py`, dashboards reading the socket)
//! read an application built on this crate as they read a DPDK one.
//!
//! The protocol, as DPDK's `lib/telemetry` speaks it:
//! - on connect the server sends
//!   `{"version":"..","pid":N,"max_output_len":16384}`;
//! - each message from the client is one command, `/name[,params]` (at
//!   most 1023 bytes are read; a longer message is cut there by the
//!   socket); the reply is one message `{"/name":VALUE}` of at most
//!   [`MAX_OUTPUT_LEN`] bytes: entries that do not fit are left out, so
//!   the reply stays valid JSON;
//! - an unknown command, one of [`MAX_CMD_LEN`] bytes or more, or one
//!   whose parameters are refused is answered `{"/name":null}` (the name
//!   cut to [`MAX_CMD_LEN`] bytes), and the connection stays open;
//! - up to [`MAX_CONNECTIONS`] clients at once, each served by a thread of
//!   its own; the socket is `<runtime dir>/dpdk_telemetry.v2` (see
//!   [`runtime_dir`]), or `…v2:1`, `…v2:2` when another live application
//!   holds that name.
//!
//! [`Telemetry`] is the command table (`/`, `/info` and `/help` built in);
//! [`register_ethdev`] adds `/ethdev/list|info|stats|xstats|link_status`
//! over a set of ports and [`register_mempool`] `/mempool/list|info` and
//! `/netmem/stats` over pools; [`Server::start`] serves a table, and
//! [`serve`] does all three at DPDK's path for a file prefix. Nothing
//! here runs on a forwarding core: the commands read what
//! [`Port::stats`]/[`Port::xstats`] and [`Pool::stats`] already publish,
//! from the server's threads.

use crate::port::Port;
use pool::Pool;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Largest reply, in bytes (DPDK's `MAX_OUTPUT_LEN`).
pub const MAX_OUTPUT_LEN: usize = 16 * 1024;
/// Command names are shorter than this (DPDK's `MAX_CMD_LEN`).
pub const MAX_CMD_LEN: usize = 56;
/// Clients served at once; more are closed at accept (DPDK's
/// `MAX_CONNECTIONS`).
pub const MAX_CONNECTIONS: usize = 10;
/// Bytes of a client message that are read (DPDK reads into 1024 bytes
/// and keeps one for the terminating NUL).
pub const MAX_MSG_LEN: usize = 1023;
/// Help texts are shorter than this (DPDK's `RTE_TEL_MAX_STRING_LEN`).
pub const MAX_HELP_LEN: usize = 128;
/// The socket's file name in the runtime directory.
pub const SOCKET_NAME: &str = "dpdk_telemetry.v2";

/// A reply value (DPDK's `rte_tel_data`: a string, a number, or a dict or
/// array of those, nested).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Uint(u64),
    /// Entries in the order given.
    Dict(Vec<(String, Value)>),
    Array(Vec<Value>),
}

impl Value {
    /// A dict from `(name, value)` pairs.
    pub fn dict<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Dict(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// The JSON text of this value in at most `budget` bytes: entries of a
    /// dict or array that do not fit are left out (as DPDK's writer does),
    /// `None` when not even the value's shell fits.
    pub fn to_json(&self, budget: usize) -> Option<String> {
        let s = match self {
            Value::Null => "null".to_string(),
            Value::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                push_json_str(&mut out, s);
                out
            }
            Value::Int(v) => v.to_string(),
            Value::Uint(v) => v.to_string(),
            Value::Dict(entries) => {
                let mut out = String::from("{");
                for (k, v) in entries {
                    let mut key = String::new();
                    push_json_str(&mut key, k);
                    // Room left: the separator, the key, ':' and the '}'.
                    let sep = usize::from(out.len() > 1);
                    let fixed = out.len() + sep + key.len() + 1 + 1;
                    let Some(room) = budget.checked_sub(fixed) else {
                        continue;
                    };
                    if let Some(val) = v.to_json(room) {
                        if sep == 1 {
                            out.push(',');
                        }
                        out.push_str(&key);
                        out.push(':');
                        out.push_str(&val);
                    }
                }
                out.push('}');
                out
            }
            Value::Array(items) => {
                let mut out = String::from("[");
                for v in items {
                    let sep = usize::from(out.len() > 1);
                    let Some(room) = budget.checked_sub(out.len() + sep + 1) else {
                        continue;
                    };
                    if let Some(val) = v.to_json(room) {
                        if sep == 1 {
                            out.push(',');
                        }
                        out.push_str(&val);
                    }
                }
                out.push(']');
                out
            }
        };
        (s.len() <= budget).then_some(s)
    }
}

/// Appends `s` as a JSON string the way DPDK escapes it: `"` and `\`
/// escaped, newline, carriage return and tab as `\n`, `\r`, `\t`, other
/// control characters dropped.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A command refused its parameters (or could not answer): the reply is
/// `{"/name":null}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("command refused")]
pub struct Refused;

/// What a command answers: its value, or [`Refused`].
pub type Answer = Result<Value, Refused>;

type Handler = Box<dyn Fn(Option<&str>) -> Answer + Send + Sync>;

/// Why a command cannot be registered (DPDK's rules: a name starting with
/// `/`, shorter than [`MAX_CMD_LEN`], of letters, digits, `_` and `/`; a
/// help text shorter than [`MAX_HELP_LEN`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("telemetry command {0:?} is not a valid name")]
    BadName(String),
    #[error("telemetry command {0:?}: help text too long")]
    HelpTooLong(String),
    #[error("telemetry command {0:?} is registered already")]
    Duplicate(String),
}

struct Command {
    help: String,
    /// `None` for the built-in commands, answered from the table itself.
    run: Option<Handler>,
}

/// The command table and the protocol's replies.
pub struct Telemetry {
    version: String,
    commands: BTreeMap<String, Command>,
}

impl Telemetry {
    /// A table with DPDK's built-in commands `/`, `/info` and `/help`;
    /// `version` is what the hello message and `/info` report (DPDK puts
    /// its `rte_version()` there).
    pub fn new(version: impl Into<String>) -> Telemetry {
        let mut t = Telemetry {
            version: version.into(),
            commands: BTreeMap::new(),
        };
        for (name, help) in [
            (
                "/",
                "Returns list of available commands, Takes no parameters",
            ),
            (
                "/info",
                "Returns DPDK Telemetry information. Takes no parameters",
            ),
            (
                "/help",
                "Returns help text for a command. Parameters: string command",
            ),
        ] {
            t.commands.insert(
                name.to_string(),
                Command {
                    help: help.to_string(),
                    run: None,
                },
            );
        }
        t
    }

    /// Adds command `name`; `run` gets the parameters (the text after the
    /// first comma, `None` without one).
    pub fn register(
        &mut self,
        name: &str,
        help: &str,
        run: impl Fn(Option<&str>) -> Answer + Send + Sync + 'static,
    ) -> Result<(), RegisterError> {
        let valid = name.starts_with('/')
            && name.len() < MAX_CMD_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/');
        if !valid {
            return Err(RegisterError::BadName(name.to_string()));
        }
        if help.len() >= MAX_HELP_LEN {
            return Err(RegisterError::HelpTooLong(name.to_string()));
        }
        if self.commands.contains_key(name) {
            return Err(RegisterError::Duplicate(name.to_string()));
        }
        self.commands.insert(
            name.to_string(),
            Command {
                help: help.to_string(),
                run: Some(Box::new(run)),
            },
        );
        Ok(())
    }

    /// The message a client gets on connect.
    pub fn hello(&self) -> String {
        let mut s = String::from("{\"version\":");
        push_json_str(&mut s, &self.version);
        let _ = write!(
            s,
            ",\"pid\":{},\"max_output_len\":{MAX_OUTPUT_LEN}}}",
            std::process::id()
        );
        s
    }

    /// The reply to one client message, as DPDK makes it: the message is
    /// cut at [`MAX_MSG_LEN`] bytes and at a NUL; the command is the text
    /// up to the first comma (leading commas skipped), the parameters the
    /// rest after it (none when empty).
    pub fn reply(&self, msg: &[u8]) -> String {
        let msg = &msg[..msg.len().min(MAX_MSG_LEN)];
        let msg = msg.split(|&b| b == 0).next().unwrap_or(&[]);
        let start = msg.iter().position(|&b| b != b',');
        let Some(start) = start else {
            // No command at all (DPDK's name for it in its null reply).
            return "{\"none\":null}".to_string();
        };
        let rest = &msg[start..];
        let (cmd, params) = match rest.iter().position(|&b| b == b',') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..]).filter(|p| !p.is_empty())),
            None => (rest, None),
        };
        let shown = String::from_utf8_lossy(&cmd[..cmd.len().min(MAX_CMD_LEN)]).into_owned();
        let params = params.map(String::from_utf8_lossy);
        let answer = match std::str::from_utf8(cmd) {
            Ok(name) if cmd.len() < MAX_CMD_LEN => self.answer(name, params.as_deref()),
            _ => Ok(Value::Null),
        };
        let mut out = String::from("{");
        push_json_str(&mut out, &shown);
        out.push(':');
        // Room for the value and the closing brace.
        let budget = MAX_OUTPUT_LEN - out.len() - 1;
        match answer.ok().and_then(|v| v.to_json(budget)) {
            Some(v) => out.push_str(&v),
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }

    fn answer(&self, name: &str, params: Option<&str>) -> Answer {
        let Some(c) = self.commands.get(name) else {
            return Ok(Value::Null);
        };
        match (&c.run, name) {
            (Some(run), _) => run(params),
            (None, "/") => Ok(Value::Array(
                self.commands
                    .keys()
                    .map(|k| Value::str(k.as_str()))
                    .collect(),
            )),
            (None, "/info") => Ok(Value::dict([
                ("version", Value::str(self.version.as_str())),
                ("pid", Value::Int(i64::from(std::process::id()))),
                ("max_output_len", Value::Int(MAX_OUTPUT_LEN as i64)),
            ])),
            (None, _) => match params {
                None => Ok(Value::str(c.help.as_str())),
                Some(p) => self
                    .commands
                    .get(p)
                    .map(|h| Value::dict([(p, Value::str(h.help.as_str()))]))
                    .ok_or(Refused),
            },
        }
    }
}

/// DPDK's runtime directory for `file_prefix` (EAL's rule):
/// `$RUNTIME_DIRECTORY/dpdk/<prefix>`, else `/var/run/dpdk/<prefix>` for
/// root and `$XDG_RUNTIME_DIR/dpdk/<prefix>` (or `/tmp/dpdk/<prefix>`) for
/// other users. DPDK's default prefix is `rte`.
pub fn runtime_dir(file_prefix: &str) -> PathBuf {
    let base = std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions and cannot fail.
            if unsafe { libc::getuid() } == 0 {
                PathBuf::from("/var/run")
            } else {
                std::env::var_os("XDG_RUNTIME_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/tmp"))
            }
        });
    base.join("dpdk").join(file_prefix)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only the server's own bookkeeping is behind these locks; it stays
    // consistent across a panicking client thread.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= sa.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket path {} is too long", path.display()),
        ));
    }
    for (d, s) in sa.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok((
        sa,
        std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
    ))
}

fn seqpacket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listening socket at `path`, DPDK's way: a stale socket file (nobody
/// accepting) is replaced; a live one gives `AddrInUse`.
fn listen_at(path: &Path) -> io::Result<OwnedFd> {
    let (sa, len) = sockaddr(path)?;
    let sock = seqpacket()?;
    let bind = |s: &OwnedFd| {
        // SAFETY: sa is a valid sockaddr_un of `len` bytes.
        cvt(unsafe { libc::bind(s.as_raw_fd(), (&raw const sa).cast(), len) })
    };
    if let Err(e) = bind(&sock) {
        if e.kind() != io::ErrorKind::AddrInUse {
            return Err(e);
        }
        let probe = seqpacket()?;
        // SAFETY: as for bind.
        if unsafe { libc::connect(probe.as_raw_fd(), (&raw const sa).cast(), len) } == 0 {
            return Err(e);
        }
        std::fs::remove_file(path)?;
        bind(&sock)?;
    }
    // SAFETY: sock is a bound socket we own.
    if let Err(e) = cvt(unsafe { libc::listen(sock.as_raw_fd(), 1) }) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(sock)
}

fn send_msg(fd: RawFd, msg: &str) -> io::Result<()> {
    // SAFETY: msg is valid for msg.len() bytes; MSG_NOSIGNAL keeps a
    // client gone away from raising SIGPIPE in the application.
    let n = unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

struct Client {
    fd: Arc<OwnedFd>,
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct Shared {
    stop: AtomicBool,
    clients: Mutex<Vec<Client>>,
}

impl Shared {
    /// Joins the clients that ended; returns how many still run.
    fn reap(&self) -> usize {
        let mut clients = lock(&self.clients);
        let (ended, live): (Vec<Client>, Vec<Client>) = std::mem::take(&mut *clients)
            .into_iter()
            .partition(|c| c.done.load(Ordering::Acquire));
        *clients = live;
        let n = clients.len();
        drop(clients);
        for c in ended {
            let _ = c.thread.join();
        }
        n
    }
}

/// The telemetry server: a listening thread and one thread per client.
/// Dropping it stops them and removes the socket file.
pub struct Server {
    path: PathBuf,
    listener: Arc<OwnedFd>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Creates `dir` if needed (mode 0700, as EAL's runtime directory),
    /// binds `dir/dpdk_telemetry.v2` (or the first free `…:N`) and serves
    /// `table` from a thread of its own.
    pub fn start(dir: &Path, table: Telemetry) -> io::Result<Server> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let base = dir.join(SOCKET_NAME);
        let mut path = base.clone();
        let mut suffix = 0u16;
        let sock = loop {
            match listen_at(&path) {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && suffix < i16::MAX as u16 => {
                    suffix += 1;
                    let mut p = base.clone().into_os_string();
                    p.push(format!(":{suffix}"));
                    path = PathBuf::from(p);
                }
                Err(e) => return Err(e),
            }
        };
        let listener = Arc::new(sock);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            clients: Mutex::new(Vec::new()),
        });
        let table = Arc::new(table);
        let (l, s) = (listener.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || listen_loop(&l, &s, &table));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        log::info!("telemetry: serving {}", path.display());
        Ok(Server {
            path,
            listener,
            shared,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn listen_loop(listener: &OwnedFd, shared: &Arc<Shared>, table: &Arc<Telemetry>) {
    loop {
        // SAFETY: accept on our listening socket; no address wanted.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if shared.stop.load(Ordering::Acquire) {
            if fd >= 0 {
                // SAFETY: fd was just accepted and is ours.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            return;
        }
        if fd < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR | libc::ECONNABORTED | libc::EMFILE | libc::ENFILE) => {
                    log::debug!("telemetry: accept: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                _ => {
                    log::error!("telemetry: accept failed, server stops: {e}");
                    return;
                }
            }
        }
        // SAFETY: fd was just accepted and is ours.
        let client = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        if shared.reap() >= MAX_CONNECTIONS {
            log::debug!("telemetry: {MAX_CONNECTIONS} clients already, one refused");
            continue;
        }
        let done = Arc::new(AtomicBool::new(false));
        let (c, d, t) = (client.clone(), done.clone(), table.clone());
        let spawned = std::thread::Builder::new()
            .name("telemetry-client".into())
            .spawn(move || {
                serve_client(c.as_raw_fd(), &t);
                d.store(true, Ordering::Release);
            });
        match spawned {
            Ok(thread) => lock(&shared.clients).push(Client {
                fd: client,
                done,
                thread,
            }),
            Err(e) => log::error!("telemetry: no client thread: {e}"),
        }
    }
}

fn serve_client(fd: RawFd, table: &Telemetry) {
    if let Err(e) = send_msg(fd, &table.hello()) {
        log::debug!("telemetry: hello: {e}");
        return;
    }
    let mut buf = [0u8; MAX_MSG_LEN];
    loop {
        // SAFETY: buf is valid for its length; a longer message is cut to
        // it by the socket (SOCK_SEQPACKET).
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        let Ok(n @ 1..) = usize::try_from(n) else {
            return;
        };
        if let Err(e) = send_msg(fd, &table.reply(&buf[..n])) {
            log::debug!("telemetry: reply: {e}");
            return;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // SAFETY: shutdown on sockets we own; it wakes the threads blocked
        // in accept and recv.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let clients = std::mem::take(&mut *lock(&self.shared.clients));
        for c in &clients {
            // SAFETY: as above; the descriptor stays open until joined.
            unsafe {
                libc::shutdown(c.fd.as_raw_fd(), libc::SHUT_RDWR);
            }
        }
        for c in clients {
            let _ = c.thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves the ethdev and mempool commands over `ports` and `pools` at
/// DPDK's socket path for `file_prefix` ([`runtime_dir`]): what an
/// application calls once its ports are open (testpmd does). `version`
/// is what `/info` reports. Keep the server for as long as the socket
/// should answer; drop it before closing the ports.
pub fn serve(
    file_prefix: &str,
    version: &str,
    ports: Vec<Arc<Port>>,
    pools: Vec<Arc<Pool>>,
) -> io::Result<Server> {
    let mut table = Telemetry::new(version);
    register_ethdev(&mut table, ports)
        .and_then(|()| register_mempool(&mut table, pools))
        .map_err(io::Error::other)?;
    Server::start(&runtime_dir(file_prefix), table)
}

/// DPDK's port id parameter: digits first (`strtoul` base 0, so `0x1`
/// too), a port that exists. What follows the number is handed back
/// (`/ethdev/xstats`' options); the other commands ignore it, as DPDK.
fn port_param(params: Option<&str>, ports: usize) -> Result<(usize, &str), Refused> {
    let p = params.ok_or(Refused)?;
    if !p.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(Refused);
    }
    let (radix, digits) = if let Some(h) = p.strip_prefix("0x").or(p.strip_prefix("0X")) {
        (16, h)
    } else if p.len() > 1 && p.starts_with('0') {
        (8, &p[1..])
    } else {
        (10, p)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let n = if end == 0 {
        // "0x" alone or "0" followed by a non-octal digit: strtoul reads
        // the 0.
        0
    } else {
        u64::from_str_radix(&digits[..end], radix).map_err(|_| Refused)?
    };
    let id = usize::try_from(n).map_err(|_| Refused)?;
    if id >= usize::from(u16::MAX) || id >= ports {
        return Err(Refused);
    }
    Ok((id, &digits[end..]))
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Adds DPDK's ethdev commands over `ports` (port id = index): `/ethdev/list`,
/// `/ethdev/info,N`, `/ethdev/stats,N`, `/ethdev/xstats,N[,hide_zero=true]`,
/// `/ethdev/link_status,N`. A closed port is no longer listed nor
/// answered, as a released ethdev in DPDK.
pub fn register_ethdev(t: &mut Telemetry, ports: Vec<Arc<Port>>) -> Result<(), RegisterError> {
    let ports = Arc::new(ports);
    let open = |ports: &Arc<Vec<Arc<Port>>>, params: Option<&str>| {
        let (id, rest) = port_param(params, ports.len())?;
        let p = ports[id].clone();
        if p.is_closed() {
            return Err(Refused);
        }
        Ok((id, p, rest.to_string()))
    };
    let ps = ports.clone();
    t.register(
        "/ethdev/list",
        "Returns list of available ethdev ports. Takes no parameters",
        move |_| {
            Ok(Value::Array(
                (0..ps.len())
                    .filter(|&i| !ps[i].is_closed())
                    .map(|i| Value::Int(i as i64))
                    .collect(),
            ))
        },
    )?;
    let ps = ports.clone();
    t.register(
        "/ethdev/stats",
        "Returns the common stats for a port. Parameters: int port_id",
        move |params| {
            let (_, p, _) = open(&ps, params)?;
            let s = p.stats();
            Ok(Value::dict([
                ("ipackets", Value::Uint(s.ipackets)),
                ("opackets", Value::Uint(s.opackets)),
                ("ibytes", Value::Uint(s.ibytes)),
                ("obytes", Value::Uint(s.obytes)),
                ("imissed", Value::Uint(s.imissed)),
                ("ierrors", Value::Uint(s.ierrors)),
                ("oerrors", Value::Uint(s.oerrors)),
                ("rx_nombuf", Value::Uint(s.rx_nombuf)),
            ]))
        },
    )?;
    let ps = ports.clone();
    t.register(
        "/ethdev/xstats",
        "Returns the extended stats for a port. Parameters: int port_id,hide_zero=true|false(Optional for indicates hide zero xstats)",
        move |params| {
            let (_, p, rest) = open(&ps, params)?;
            // DPDK: unknown extra parameters are ignored.
            let hide_zero = rest
                .trim_start_matches(',')
                .split(',')
                .any(|kv| kv == "hide_zero=true");
            Ok(Value::Dict(
                p.xstats()
                    .into_iter()
                    .filter(|x| !(hide_zero && x.value == 0))
                    .map(|x| (x.name, Value::Uint(x.value)))
                    .collect(),
            ))
        },
    )?;
    let ps = ports.clone();
    t.register(
        "/ethdev/link_status",
        "Returns the link status for a port. Parameters: int port_id",
        move |params| {
            let (_, p, _) = open(&ps, params)?;
            let l = p.link();
            if !l.up {
                return Ok(Value::dict([("status", Value::str("DOWN"))]));
            }
            let duplex = if l.full_duplex {
                "full-duplex"
            } else {
                "half-duplex"
            };
            Ok(Value::dict([
                ("status", Value::str("UP")),
                ("speed", Value::Uint(u64::from(l.speed))),
                ("duplex", Value::str(duplex)),
            ]))
        },
    )?;
    let ps = ports;
    t.register(
        "/ethdev/info",
        "Returns the device info for a port. Parameters: int port_id",
        move |params| {
            let (id, p, _) = open(&ps, params)?;
            Ok(port_info(id, &p))
        },
    )?;
    Ok(())
}

/// `/ethdev/info`'s dict, with DPDK's keys in DPDK's order.
fn port_info(id: usize, p: &Port) -> Value {
    let c = p.config();
    let started = p.is_started();
    let state = |n: u16| Value::Array((0..n).map(|_| Value::Int(i64::from(started))).collect());
    let mut rx_offloads = Vec::new();
    if c.vlan_strip {
        rx_offloads.push("VLAN_STRIP");
    }
    if c.rx_offloads.checksum {
        rx_offloads.extend(["IPV4_CKSUM", "UDP_CKSUM", "TCP_CKSUM"]);
    }
    if c.rx_offloads.rss_hash {
        rx_offloads.push("RSS_HASH");
    }
    // Not given (the port does not keep them): DPDK's rx_mbuf_size_min
    // and fw_version. scattered_rx is 1: both drivers receive a frame
    // longer than a buffer into several.
    Value::dict([
        ("name", Value::str(p.pci_address().to_string())),
        // RTE_ETH_DEV_ATTACHED.
        ("state", Value::Int(1)),
        ("nb_rx_queues", Value::Int(i64::from(c.rx_queues))),
        ("nb_tx_queues", Value::Int(i64::from(c.tx_queues))),
        ("port_id", Value::Int(id as i64)),
        ("mtu", Value::Int(i64::from(c.mtu))),
        ("mac_addr", Value::str(mac_text(p.mac_addr()))),
        ("promiscuous", Value::Int(i64::from(c.promiscuous))),
        ("scattered_rx", Value::Int(1)),
        ("all_multicast", Value::Int(i64::from(c.allmulti))),
        ("dev_started", Value::Int(i64::from(started))),
        ("lro", Value::Int(0)),
        ("dev_configured", Value::Int(1)),
        ("rxq_state", state(c.rx_queues)),
        ("txq_state", state(c.tx_queues)),
        ("numa_node", Value::Int(-1)),
        ("dev_flags", Value::str("0x0")),
        (
            "rx_offloads",
            Value::Array(rx_offloads.into_iter().map(Value::str).collect()),
        ),
        ("tx_offloads", Value::Array(Vec::new())),
        ("ethdev_rss_hf", Value::str(format!("{:#x}", rss_hf(&c)))),
    ])
}

/// The hashed packet types as DPDK's `RTE_ETH_RSS_*` bits (0 without RSS).
fn rss_hf(c: &crate::PortConfig) -> u64 {
    use crate::HashTypes as H;
    if !c.rss_enabled() {
        return 0;
    }
    [
        (H::IPV4, 2),
        (H::IPV4_TCP, 4),
        (H::IPV4_UDP, 5),
        (H::IPV6, 8),
        (H::IPV6_TCP, 10),
        (H::IPV6_UDP, 11),
    ]
    .into_iter()
    .filter(|(t, _)| c.rss.hash_types.contains(*t))
    .fold(0, |acc, (_, bit)| acc | 1u64 << bit)
}

/// Adds DPDK's mempool commands over `pools` (pool id = index):
/// `/mempool/list`, `/mempool/info,NAME` (DPDK's keys that mean something
/// here; an unknown name gives an empty dict, as in DPDK) and, beyond
/// DPDK, `/netmem/stats,NAME`: the pool's page_pool-style statistics
/// ([`pool::PoolStats`], Linux's page_pool names).
pub fn register_mempool(t: &mut Telemetry, pools: Vec<Arc<Pool>>) -> Result<(), RegisterError> {
    let pools = Arc::new(pools);
    let ps = pools.clone();
    t.register(
        "/mempool/list",
        "Returns list of available mempool. Takes no parameters",
        move |_| {
            Ok(Value::Array(
                ps.iter().map(|p| Value::str(p.name())).collect(),
            ))
        },
    )?;
    let ps = pools.clone();
    t.register(
        "/mempool/info",
        "Returns mempool info. Parameters: pool_name",
        move |params| {
            let name = params.ok_or(Refused)?;
            let Some((id, p)) = ps.iter().enumerate().find(|(_, p)| p.name() == name) else {
                return Ok(Value::Dict(Vec::new()));
            };
            let s = p.stats();
            Ok(Value::dict([
                ("name", Value::str(p.name())),
                ("pool_id", Value::Uint(id as u64)),
                ("flags", Value::Uint(0)),
                ("socket_id", Value::Int(0)),
                ("size", Value::Uint(p.count() as u64)),
                ("cache_size", Value::Uint(p.cache_size() as u64)),
                ("elt_size", Value::Uint(p.buf_size() as u64)),
                ("header_size", Value::Uint(0)),
                ("trailer_size", Value::Uint(0)),
                ("private_data_size", Value::Uint(0)),
                ("ops_index", Value::Int(0)),
                ("populated_size", Value::Uint(s.count)),
                ("total_cache_count", Value::Uint(s.in_caches)),
                ("common_pool_count", Value::Uint(s.in_ring)),
            ]))
        },
    )?;
    let ps = pools;
    t.register(
        "/netmem/stats",
        "Returns a netmem pool's page_pool statistics. Parameters: pool_name",
        move |params| {
            let name = params.ok_or(Refused)?;
            let p = ps.iter().find(|p| p.name() == name).ok_or(Refused)?;
            let s = p.stats();
            Ok(Value::dict([
                ("alloc_fast", Value::Uint(s.alloc_fast)),
                ("alloc_slow", Value::Uint(s.alloc_slow)),
                ("alloc_empty", Value::Uint(s.alloc_empty)),
                ("alloc_refill", Value::Uint(s.alloc_refill)),
                ("recycle_cached", Value::Uint(s.recycle_cached)),
                ("recycle_cache_full", Value::Uint(s.recycle_cache_full)),
                ("recycle_ring", Value::Uint(s.recycle_ring)),
                ("recycle_ring_full", Value::Uint(s.recycle_ring_full)),
                (
                    "recycle_released_refcnt",
                    Value::Uint(s.recycle_released_refcnt),
                ),
                ("released_to_provider", Value::Uint(s.released_to_provider)),
                ("double_release", Value::Uint(s.double_release)),
                ("wrong_pool", Value::Uint(s.wrong_pool)),
                ("release_bad_ref", Value::Uint(s.release_bad_ref)),
                ("not_a_handle", Value::Uint(s.not_a_handle)),
                ("in_use", Value::Uint(s.in_use)),
                ("in_ring", Value::Uint(s.in_ring)),
                ("in_caches", Value::Uint(s.in_caches)),
                ("count", Value::Uint(s.count)),
            ]))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table() -> Telemetry {
        let mut t = Telemetry::new("e1k-pmd test");
        t.register("/test/echo", "Echoes its parameters", |p| match p {
            Some(p) => Ok(Value::str(p)),
            None => Err(Refused),
        })
        .expect("register");
        t
    }

    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    #[test]
    fn hello_and_info_are_dpdks() {
        let t = table();
        let pid = std::process::id();
        assert_eq!(
            t.hello(),
            format!("{{\"version\":\"e1k-pmd test\",\"pid\":{pid},\"max_output_len\":16384}}")
        );
        assert_eq!(
            t.reply(b"/info"),
            format!(
                "{{\"/info\":{{\"version\":\"e1k-pmd test\",\"pid\":{pid},\"max_output_len\":16384}}}}"
            )
        );
    }

    #[test]
    fn commands_are_listed_in_order_and_have_help() {
        let t = table();
        assert_eq!(t.reply(b"/"), r#"{"/":["/","/help","/info","/test/echo"]}"#);
        assert_eq!(
            t.reply(b"/help"),
            r#"{"/help":"Returns help text for a command. Parameters: string command"}"#
        );
        assert_eq!(
            t.reply(b"/help,/test/echo"),
            r#"{"/help":{"/test/echo":"Echoes its parameters"}}"#
        );
        assert_eq!(t.reply(b"/help,/nope"), r#"{"/help":null}"#);
    }

    #[test]
    fn parameters_follow_the_first_comma() {
        let t = table();
        assert_eq!(t.reply(b"/test/echo,a,b"), r#"{"/test/echo":"a,b"}"#);
        // Leading commas are skipped (strtok), an empty parameter is none.
        assert_eq!(t.reply(b",,/test/echo,x"), r#"{"/test/echo":"x"}"#);
        assert_eq!(t.reply(b"/test/echo,"), r#"{"/test/echo":null}"#);
        assert_eq!(t.reply(b"/test/echo"), r#"{"/test/echo":null}"#);
        // A NUL ends the message.
        assert_eq!(t.reply(b"/test/echo,ab\0cd"), r#"{"/test/echo":"ab"}"#);
    }

    #[test]
    fn unknown_malformed_and_oversized_commands_get_null() {
        let t = table();
        assert_eq!(t.reply(b"/bad"), r#"{"/bad":null}"#);
        assert_eq!(t.reply(b"ethdev/list"), r#"{"ethdev/list":null}"#);
        assert_eq!(t.reply(b",,,"), r#"{"none":null}"#);
        // Quotes and control characters stay valid JSON.
        let r = t.reply(b"/a\"b\\c\n\x01");
        assert_eq!(r, r#"{"/a\"b\\c\n":null}"#);
        json(&r);
        let r = t.reply(&[0xff, b'/', 0xfe]);
        json(&r);
        // A name of MAX_CMD_LEN bytes or more is unknown; the reply's key
        // is the name cut to MAX_CMD_LEN bytes.
        let long = "/test/echo".to_string() + &"x".repeat(100);
        let r = t.reply(long.as_bytes());
        assert_eq!(r, format!("{{\"{}\":null}}", &long[..MAX_CMD_LEN]));
        // A huge message: only MAX_MSG_LEN bytes count.
        let huge = format!("/test/echo,{}", "y".repeat(5000));
        let r = t.reply(huge.as_bytes());
        let v = json(&r);
        assert_eq!(
            v["/test/echo"].as_str().map(str::len),
            Some(MAX_MSG_LEN - 11)
        );
    }

    #[test]
    fn replies_never_exceed_max_output_len_and_stay_json() {
        let mut t = Telemetry::new("v");
        t.register("/big", "A big dict", |_| {
            Ok(Value::Dict(
                (0..5000)
                    .map(|i| (format!("counter_{i}"), Value::Uint(u64::MAX)))
                    .collect(),
            ))
        })
        .expect("register");
        let r = t.reply(b"/big");
        assert!(r.len() <= MAX_OUTPUT_LEN, "{}", r.len());
        let v = json(&r);
        let d = v["/big"].as_object().expect("a dict");
        assert!(d.len() > 100 && d.len() < 5000, "{}", d.len());
        assert_eq!(d["counter_0"], serde_json::json!(u64::MAX));
        // A nested value that does not fit is left out, the rest kept.
        let nested = Value::dict([
            ("a", Value::Int(1)),
            ("big", Value::str("z".repeat(100))),
            ("b", Value::Array(vec![Value::Int(-2), Value::Null])),
        ]);
        assert_eq!(
            nested.to_json(40).as_deref(),
            Some(r#"{"a":1,"b":[-2,null]}"#)
        );
    }

    #[test]
    fn registration_follows_dpdks_rules() {
        let mut t = table();
        let ok = |_: Option<&str>| Ok(Value::Null);
        assert!(matches!(
            t.register("no_slash", "h", ok),
            Err(RegisterError::BadName(_))
        ));
        assert!(matches!(
            t.register("/a-b", "h", ok),
            Err(RegisterError::BadName(_))
        ));
        assert!(matches!(
            t.register(&format!("/{}", "a".repeat(MAX_CMD_LEN)), "h", ok),
            Err(RegisterError::BadName(_))
        ));
        assert!(matches!(
            t.register("/x", &"h".repeat(MAX_HELP_LEN), ok),
            Err(RegisterError::HelpTooLong(_))
        ));
        assert!(matches!(
            t.register("/test/echo", "h", ok),
            Err(RegisterError::Duplicate(_))
        ));
    }

    #[test]
    fn port_ids_parse_as_strtoul_does() {
        assert_eq!(port_param(Some("1"), 2), Ok((1, "")));
        assert_eq!(port_param(Some("0x1"), 2), Ok((1, "")));
        assert_eq!(
            port_param(Some("0,hide_zero=true"), 2),
            Ok((0, ",hide_zero=true"))
        );
        assert_eq!(port_param(Some("2"), 2), Err(Refused));
        assert_eq!(port_param(Some("a"), 2), Err(Refused));
        assert_eq!(port_param(Some("-1"), 2), Err(Refused));
        assert_eq!(port_param(Some(" 1"), 2), Err(Refused));
        assert_eq!(port_param(None, 2), Err(Refused));
        assert_eq!(
            port_param(Some("99999999999999999999999999"), 2),
            Err(Refused)
        );
    }

    #[test]
    fn mempool_commands_answer_from_the_pools_counters() {
        let pool = Pool::with_host_memory(&pool::PoolConfig::new("mbufs", 64).with_buf_size(2048))
            .expect("pool");
        let mut t = Telemetry::new("v");
        register_mempool(&mut t, vec![pool.clone()]).expect("register");
        let bufs: Vec<_> = (0..5).filter_map(|_| pool.alloc()).collect();
        assert_eq!(t.reply(b"/mempool/list"), r#"{"/mempool/list":["mbufs"]}"#);
        let info = json(&t.reply(b"/mempool/info,mbufs"));
        let i = &info["/mempool/info"];
        assert_eq!(i["name"], "mbufs");
        assert_eq!(i["size"], 64);
        assert_eq!(i["elt_size"], 2048);
        assert_eq!(i["cache_size"], pool.cache_size() as u64);
        let s = json(&t.reply(b"/netmem/stats,mbufs"));
        let s = &s["/netmem/stats"];
        let st = pool.stats();
        assert_eq!(s["in_use"], 5);
        assert_eq!(s["alloc_fast"].as_u64(), Some(st.alloc_fast));
        assert_eq!(s["alloc_slow"].as_u64(), Some(st.alloc_slow));
        assert_eq!(
            i["common_pool_count"].as_u64().unwrap_or(0)
                + i["total_cache_count"].as_u64().unwrap_or(0),
            59
        );
        // As DPDK: an unknown pool is an empty dict, no name is null.
        assert_eq!(t.reply(b"/mempool/info,nope"), r#"{"/mempool/info":{}}"#);
        assert_eq!(t.reply(b"/mempool/info"), r#"{"/mempool/info":null}"#);
        assert_eq!(t.reply(b"/netmem/stats,nope"), r#"{"/netmem/stats":null}"#);
        pool.free_bulk(bufs);
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pmd-tel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A client: connect, read the hello, then one reply per command.
    struct TestClient(OwnedFd);

    impl TestClient {
        fn connect(path: &Path) -> io::Result<(TestClient, String)> {
            let (sa, len) = sockaddr(path)?;
            let fd = seqpacket()?;
            // SAFETY: sa is a valid sockaddr_un of `len` bytes.
            cvt(unsafe { libc::connect(fd.as_raw_fd(), (&raw const sa).cast(), len) })?;
            let tv = libc::timeval {
                tv_sec: 10,
                tv_usec: 0,
            };
            // SAFETY: tv is a valid timeval for SO_RCVTIMEO.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                );
            }
            let c = TestClient(fd);
            let hello = c.recv()?;
            Ok((c, hello))
        }

        fn recv(&self) -> io::Result<String> {
            let mut buf = vec![0u8; MAX_OUTPUT_LEN + 1];
            // SAFETY: buf is valid for its length.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            buf.truncate(n);
            String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }

        fn ask(&self, cmd: &[u8]) -> io::Result<String> {
            // SAFETY: cmd is valid for its length.
            let n = unsafe { libc::send(self.0.as_raw_fd(), cmd.as_ptr().cast(), cmd.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            self.recv()
        }
    }

    #[test]
    fn server_answers_clients_in_turn_and_at_once_and_survives_bad_input() {
        let dir = temp_dir("serve");
        let server = Server::start(&dir, table()).expect("server");
        assert_eq!(server.path(), dir.join(SOCKET_NAME));
        for round in 0..3 {
            let (c, hello) = TestClient::connect(server.path()).expect("connect");
            assert_eq!(json(&hello)["max_output_len"], 16384, "{hello}");
            assert_eq!(c.ask(b"/bad").expect("reply"), r#"{"/bad":null}"#);
            let huge = vec![b'q'; 100_000];
            let r = c.ask(&huge).expect("reply to a huge message");
            assert_eq!(r, format!("{{\"{}\":null}}", "q".repeat(MAX_CMD_LEN)));
            let echo = format!("/test/echo,{round}");
            assert_eq!(
                c.ask(echo.as_bytes()).expect("reply"),
                format!("{{\"/test/echo\":\"{round}\"}}")
            );
        }
        // Several at once, each with its own thread.
        let clients: Vec<TestClient> = (0..3)
            .map(|_| TestClient::connect(server.path()).expect("connect").0)
            .collect();
        for (i, c) in clients.iter().enumerate() {
            let r = c.ask(format!("/test/echo,{i}").as_bytes()).expect("reply");
            assert_eq!(r, format!("{{\"/test/echo\":\"{i}\"}}"));
        }
        drop(clients);
        let path = server.path().to_path_buf();
        drop(server);
        assert!(!path.exists(), "socket file removed at the end");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn at_most_max_connections_clients_are_served() {
        let dir = temp_dir("max");
        let server = Server::start(&dir, table()).expect("server");
        let held: Vec<TestClient> = (0..MAX_CONNECTIONS)
            .map(|_| TestClient::connect(server.path()).expect("connect").0)
            .collect();
        // The next one is accepted and closed at once: no hello.
        let refused = TestClient::connect(server.path());
        assert!(
            refused.as_ref().map_or(true, |(_, h)| h.is_empty()),
            "an eleventh client was served"
        );
        drop(held);
        // Once they have gone, a new one is served again.
        let mut served = false;
        for _ in 0..100 {
            if let Ok((c, h)) = TestClient::connect(server.path())
                && !h.is_empty()
            {
                assert_eq!(
                    c.ask(b"/test/echo,z").expect("reply"),
                    r#"{"/test/echo":"z"}"#
                );
                served = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(served);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_gets_a_suffix() {
        let dir = temp_dir("stale");
        std::fs::create_dir_all(&dir).expect("dir");
        // A socket file nobody listens on (an application that crashed).
        let stale = listen_at(&dir.join(SOCKET_NAME)).expect("bind");
        drop(stale);
        assert!(dir.join(SOCKET_NAME).exists());
        let first = Server::start(&dir, table()).expect("replaces the stale socket");
        assert_eq!(first.path(), dir.join(SOCKET_NAME));
        let second = Server::start(&dir, table()).expect("second instance");
        assert_eq!(second.path(), dir.join(format!("{SOCKET_NAME}:1")));
        let (c, _) = TestClient::connect(second.path()).expect("connect");
        assert_eq!(
            c.ask(b"/test/echo,2").expect("reply"),
            r#"{"/test/echo":"2"}"#
        );
        drop((first, second));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn runtime_dir_is_eals() {
        // Only the part that needs no environment change: the prefix is
        // the last component under dpdk/.
        let d = runtime_dir("rte");
        assert!(d.ends_with("dpdk/rte"), "{}", d.display());
    }
}
