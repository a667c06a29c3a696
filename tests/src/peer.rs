//! The host-side frame peer: one per NIC, on the unix stream socket that is
//! the NIC's QEMU netdev. Each frame on the wire is a 4-byte big-endian length
//! followed by the Ethernet frame without FCS (QEMU's `-netdev stream`).

use crate::Error;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The listening half, created before QEMU starts so QEMU's connect succeeds.
pub(crate) struct PeerSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl PeerSocket {
    pub(crate) fn bind(path: &Path) -> Result<Self, Error> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| Error::io(path, e))?;
        Ok(PeerSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts QEMU's connection (made while QEMU starts).
    pub(crate) fn accept(self, timeout: Duration) -> Result<FramePeer, Error> {
        self.listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(&self.path, e))?;
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(Error::Qemu(format!(
                            "QEMU did not connect to netdev socket {}",
                            self.path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        };
        let _ = std::fs::remove_file(&self.path);
        FramePeer::new(stream)
    }
}

impl Drop for PeerSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How long a send may block on a full socket before it gives up (QEMU
/// stops reading a NIC's netdev while the NIC cannot receive, e.g. its RX
/// ring has no free descriptor: a send must not wait for that forever).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The sending half: the stream and what is left of a frame a timed-out
/// write cut short (written first next time, so the wire's framing holds).
struct TxState {
    stream: UnixStream,
    partial: Vec<u8>,
}

/// Sends and receives raw Ethernet frames on one NIC's wire.
pub struct FramePeer {
    tx: Mutex<TxState>,
    rx: Mutex<Receiver<Vec<u8>>>,
    sent: AtomicU64,
    received: Arc<AtomicU64>,
    reader: Option<JoinHandle<()>>,
}

impl FramePeer {
    fn new(stream: UnixStream) -> Result<Self, Error> {
        stream
            .set_nonblocking(false)
            .map_err(|e| Error::Qemu(format!("netdev socket: {e}")))?;
        let mut rd = stream
            .try_clone()
            .map_err(|e| Error::Qemu(format!("netdev socket: {e}")))?;
        let (tx, rx) = channel();
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let reader = std::thread::Builder::new()
            .name("frame-peer".into())
            .spawn(move || {
                let mut len = [0u8; 4];
                loop {
                    if rd.read_exact(&mut len).is_err() {
                        return;
                    }
                    let n = u32::from_be_bytes(len) as usize;
                    let mut frame = vec![0u8; n];
                    if rd.read_exact(&mut frame).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if tx.send(frame).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Qemu(format!("spawning the frame reader: {e}")))?;
        Ok(FramePeer {
            tx: Mutex::new(TxState {
                stream,
                partial: Vec::new(),
            }),
            rx: Mutex::new(rx),
            sent: AtomicU64::new(0),
            received,
            reader: Some(reader),
        })
    }

    /// Puts one frame on the wire towards the NIC. Blocks while QEMU's
    /// socket buffer is full (the stream backend never drops), at most
    /// [`SEND_TIMEOUT`].
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.send_batch_within(std::slice::from_ref(&frame), SEND_TIMEOUT)
    }

    /// Puts several frames on the wire with one write (what a traffic
    /// generator needs to keep up with the guest), blocking at most
    /// [`SEND_TIMEOUT`].
    pub fn send_batch<F: AsRef<[u8]>>(&self, frames: &[F]) -> io::Result<()> {
        self.send_batch_within(frames, SEND_TIMEOUT)
    }

    /// [`FramePeer::send_batch`] that gives up after `timeout` with
    /// `ErrorKind::TimedOut`. Frames not begun by then are not sent (and
    /// not counted); the rest of a frame cut short is kept and written
    /// before the next send, so the receiver never sees a torn frame.
    pub fn send_batch_within<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        timeout: Duration,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(frames.iter().map(|f| 4 + f.as_ref().len()).sum());
        // Where each frame ends in `buf`, to tell whole frames from a torn one.
        let mut ends = Vec::with_capacity(frames.len());
        let mut s = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let head = s.partial.len();
        buf.append(&mut s.partial);
        for f in frames {
            let f = f.as_ref();
            let len = u32::try_from(f.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(f);
            ends.push(buf.len());
        }
        let deadline = Instant::now() + timeout;
        let mut off = 0;
        let result = loop {
            if off == buf.len() {
                break Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the NIC's netdev took no data for {timeout:?} (QEMU stops reading while the NIC cannot receive)"
                    ),
                ));
            }
            s.stream.set_write_timeout(Some(left))?;
            match s.stream.write(&buf[off..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => break Err(e),
            }
        };
        // Frames wholly written count as sent; the tail of one cut short is
        // kept for the next send; frames never begun are dropped.
        let whole = ends.iter().filter(|&&e| e <= off).count();
        if off < head {
            // Still inside the frame an earlier send cut short.
            s.partial = buf[off..head].to_vec();
        } else if let Some(&end) = ends.get(whole) {
            let start = if whole == 0 { head } else { ends[whole - 1] };
            if off > start {
                s.partial = buf[off..end].to_vec();
            }
        }
        self.sent.fetch_add(whole as u64, Ordering::Relaxed);
        result
    }

    /// The next frame the NIC transmitted, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        rx.recv_timeout(timeout).ok()
    }

    /// Up to `n` frames, waiting at most `timeout` in all.
    pub fn recv_n(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(f) => out.push(f),
                None => break,
            }
        }
        out
    }

    /// Every frame already received, without waiting.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        rx.try_iter().collect()
    }

    /// Frames sent to the NIC so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Frames received from the NIC so far (including ones not yet taken).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for FramePeer {
    fn drop(&mut self) {
        if let Ok(s) = self.tx.lock() {
            let _ = s.stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> (FramePeer, UnixStream) {
        let path = std::env::temp_dir().join(format!("peer-{}-{name}.sock", std::process::id()));
        let sock = PeerSocket::bind(&path).unwrap();
        let far = UnixStream::connect(&path).unwrap();
        (sock.accept(Duration::from_secs(5)).unwrap(), far)
    }

    fn read_frame(s: &mut UnixStream) -> Vec<u8> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut f).unwrap();
        f
    }

    #[test]
    fn a_send_to_a_wire_nobody_reads_times_out_and_the_framing_survives() {
        let (peer, mut far) = wire("stuck");
        // Fill the socket until a send gives up: nobody reads the far end.
        let frame: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let batch = vec![frame.clone(); 32];
        let t0 = Instant::now();
        let err = loop {
            if let Err(e) = peer.send_batch_within(&batch, Duration::from_millis(200)) {
                break e;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the socket never filled"
            );
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(t0.elapsed() < Duration::from_secs(20));
        let sent = peer.sent();
        // Read everything the far end got, then send a marker: every frame
        // on the wire is whole (the cut one completed before the marker).
        let reader = std::thread::spawn(move || {
            let mut frames = Vec::new();
            loop {
                let f = read_frame(&mut far);
                if f == b"marker" {
                    return frames;
                }
                frames.push(f);
            }
        });
        peer.send(b"marker").unwrap();
        let frames = reader.join().unwrap();
        assert!(
            frames.iter().all(|f| *f == frame),
            "a torn frame on the wire"
        );
        // The counted frames, plus at most the one cut short and completed.
        let n = frames.len() as u64;
        assert!(
            n == sent || n == sent + 1,
            "{n} frames on the wire, {sent} counted"
        );
    }
}
