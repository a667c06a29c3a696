//! Packet capture: forwarding lcores copy the frames of the captured port
//! into a bounded channel; a writer thread puts them in a pcap file. When
//! the writer falls behind, frames are counted as not captured instead of
//! slowing forwarding down.

use super::pcap::{self, PcapWriter};
use pmd::Packet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames the channel holds before new ones are dropped from the capture.
const DEPTH: usize = 65_536;

/// The lcores' end: records frames.
#[derive(Clone)]
pub struct CaptureSink {
    tx: SyncSender<(Duration, Vec<u8>)>,
    missed: Arc<AtomicU64>,
}

impl CaptureSink {
    /// Copies each packet (all its CPU-readable bytes) into the capture.
    pub fn record(&self, pkts: &[Packet]) {
        let ts = pcap::now();
        for p in pkts {
            let Some(bytes) = p.to_vec() else {
                // Device-memory payload: the CPU may not read it.
                self.missed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            match self.tx.try_send((ts, bytes)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.missed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("creating capture file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing capture file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the capture writer thread for {0} panicked")]
    Writer(PathBuf),
}

/// A capture in progress.
pub struct Capture {
    pub port: usize,
    path: PathBuf,
    sink: CaptureSink,
    writer: JoinHandle<std::io::Result<u64>>,
}

/// How a capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureSummary {
    pub written: u64,
    /// Frames seen but not written (writer behind, or device memory).
    pub missed: u64,
}

impl Capture {
    /// Creates (truncates) `path` and starts the writer.
    pub fn start(port: usize, path: &Path) -> Result<Capture, CaptureError> {
        let file = File::create(path).map_err(|source| CaptureError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let w = PcapWriter::new(BufWriter::new(file)).map_err(|source| CaptureError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let (tx, rx) = sync_channel(DEPTH);
        let writer = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || write_all(w, rx))
            .map_err(|source| CaptureError::Create {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Capture {
            port,
            path: path.to_path_buf(),
            sink: CaptureSink {
                tx,
                missed: Arc::new(AtomicU64::new(0)),
            },
            writer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sink for a stream that receives from or sends to the port.
    pub fn sink(&self) -> CaptureSink {
        self.sink.clone()
    }

    /// Waits for the writer once every stream has dropped its sink.
    pub fn finish(self) -> Result<CaptureSummary, CaptureError> {
        let missed = self.sink.missed.clone();
        drop(self.sink);
        let written = self
            .writer
            .join()
            .map_err(|_| CaptureError::Writer(self.path.clone()))?
            .map_err(|source| CaptureError::Write {
                path: self.path.clone(),
                source,
            })?;
        Ok(CaptureSummary {
            written,
            missed: missed.load(Ordering::Relaxed),
        })
    }
}

fn write_all(
    mut w: PcapWriter<BufWriter<File>>,
    rx: Receiver<(Duration, Vec<u8>)>,
) -> std::io::Result<u64> {
    for (ts, frame) in rx {
        w.write(ts, &frame)?;
    }
    let n = w.frames();
    w.finish()?;
    Ok(n)
}
