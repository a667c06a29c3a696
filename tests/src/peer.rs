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

/// Sends and receives raw Ethernet frames on one NIC's wire.
pub struct FramePeer {
    tx: Mutex<UnixStream>,
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
            tx: Mutex::new(stream),
            rx: Mutex::new(rx),
            sent: AtomicU64::new(0),
            received,
            reader: Some(reader),
        })
    }

    /// Puts one frame on the wire towards the NIC. Blocks while QEMU's
    /// socket buffer is full (the stream backend never drops).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let mut buf = Vec::with_capacity(4 + frame.len());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(frame);
        let mut s = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        s.write_all(&buf)?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Puts several frames on the wire with one write (what a traffic
    /// generator needs to keep up with the guest).
    pub fn send_batch(&self, frames: &[Vec<u8>]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(frames.iter().map(|f| 4 + f.len()).sum());
        for f in frames {
            let len = u32::try_from(f.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(f);
        }
        let mut s = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        s.write_all(&buf)?;
        self.sent.fetch_add(frames.len() as u64, Ordering::Relaxed);
        Ok(())
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
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
