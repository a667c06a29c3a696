//! Classic pcap files (the format tcpdump and tshark read): a 24-byte global
//! header, then per frame a 16-byte record header and the frame bytes.
//! Written in the host's byte order with microsecond timestamps and link
//! type Ethernet, as libpcap does.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Magic of a microsecond-resolution pcap file.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame a record keeps (tcpdump's default snap length).
pub const SNAPLEN: u32 = 262_144;

/// Writes frames to a pcap stream.
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC.to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_ne_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, frames: 0 })
    }

    /// Appends one frame seen at `ts` (time since the Unix epoch).
    pub fn write(&mut self, ts: Duration, frame: &[u8]) -> io::Result<()> {
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl = orig.min(SNAPLEN);
        let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        h[8..12].copy_from_slice(&incl.to_ne_bytes());
        h[12..16].copy_from_slice(&orig.to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..incl as usize])?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the stream.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Now, as a pcap timestamp.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts: Duration,
    /// Length of the frame on the wire.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Why a pcap file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    #[error("pcap file shorter than its 24-byte header")]
    ShortHeader,
    #[error("not a pcap file (magic {0:#010x})")]
    BadMagic(u32),
    #[error("pcap link type {0} is not Ethernet (1)")]
    LinkType(u32),
    #[error("pcap record {index} is cut short at byte {offset}")]
    Truncated { index: usize, offset: usize },
}

/// Reads a whole pcap file (either byte order, microsecond or nanosecond
/// timestamps).
pub fn read(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    if bytes.len() < 24 {
        return Err(PcapError::ShortHeader);
    }
    let raw = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let (swap, nanos) = match raw {
        0xa1b2_c3d4 => (false, false),
        0xd4c3_b2a1 => (true, false),
        0xa1b2_3c4d => (false, true),
        0x4d3c_b2a1 => (true, true),
        m => return Err(PcapError::BadMagic(m)),
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if swap {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let link = u32_at(20);
    if link != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType(link));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let index = out.len();
        if at + 16 > bytes.len() {
            return Err(PcapError::Truncated { index, offset: at });
        }
        let secs = u32_at(at);
        let frac = u32_at(at + 4);
        let incl = u32_at(at + 8) as usize;
        let orig_len = u32_at(at + 12);
        let start = at + 16;
        let end = start
            .checked_add(incl)
            .filter(|e| *e <= bytes.len())
            .ok_or(PcapError::Truncated {
                index,
                offset: start,
            })?;
        let ts = Duration::from_secs(u64::from(secs))
            + if nanos {
                Duration::from_nanos(u64::from(frac))
            } else {
                Duration::from_micros(u64::from(frac))
            };
        out.push(Record {
            ts,
            orig_len,
            data: bytes[start..end].to_vec(),
        });
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Vec<u8>> {
        (0..5u8)
            .map(|i| {
                (0..60 + usize::from(i) * 100)
                    .map(|b| b as u8 ^ i)
                    .collect()
            })
            .collect()
    }

    fn write_all(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(
                Duration::new(1_700_000_000 + i as u64, 250_000 * i as u32),
                f,
            )
            .unwrap();
        }
        assert_eq!(w.frames(), frames.len() as u64);
        w.finish().unwrap()
    }

    #[test]
    fn frames_read_back_exactly() {
        let f = frames();
        let bytes = write_all(&f);
        assert_eq!(
            bytes.len(),
            24 + f.iter().map(|x| 16 + x.len()).sum::<usize>()
        );
        let recs = read(&bytes).unwrap();
        assert_eq!(recs.len(), f.len());
        for (i, (r, f)) in recs.iter().zip(&f).enumerate() {
            assert_eq!(&r.data, f);
            assert_eq!(r.orig_len as usize, f.len());
            assert_eq!(
                r.ts,
                Duration::new(1_700_000_000 + i as u64, 250_000 * i as u32)
            );
        }
    }

    #[test]
    fn header_is_libpcaps() {
        let bytes = write_all(&[]);
        assert_eq!(bytes.len(), 24);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), MAGIC);
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), 2);
        assert_eq!(u16::from_ne_bytes([bytes[6], bytes[7]]), 4);
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = write_all(&frames());
        assert_eq!(read(&bytes[..10]), Err(PcapError::ShortHeader));
        let mut bad = bytes.clone();
        bad[0] = 0;
        assert!(matches!(read(&bad), Err(PcapError::BadMagic(_))));
        assert!(matches!(
            read(&bytes[..bytes.len() - 1]),
            Err(PcapError::Truncated { index: 4, .. })
        ));
    }

    /// tcpdump (installed by scripts/setup) reads our file and sees every
    /// frame.
    #[test]
    fn tcpdump_reads_the_file() {
        let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("tcpdump is missing: run scripts/setup");
        let t = crate::testpmd::frames::UdpTemplate {
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            src_ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: std::net::Ipv4Addr::new(198, 18, 0, 2),
            src_port: 9,
            dst_port: 4789,
        };
        let f: Vec<Vec<u8>> = [60usize, 64, 200, 1514]
            .iter()
            .map(|&len| {
                let mut b = vec![0u8; len];
                assert!(crate::testpmd::frames::write_udp_headers(&mut b, len, &t));
                b
            })
            .collect();
        let path = std::env::temp_dir().join(format!("testpmd-pcap-{}.pcap", std::process::id()));
        std::fs::write(&path, write_all(&f)).unwrap();
        let out = std::process::Command::new(tcpdump)
            .args(["-n", "-t", "-q", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), f.len(), "{text}");
        for (line, frame) in lines.iter().zip(&f) {
            let udp_payload = frame.len() - crate::testpmd::frames::UDP_HLEN;
            let want = format!("198.18.0.1.9 > 198.18.0.2.4789: UDP, length {udp_payload}");
            assert!(line.contains(&want), "{line:?} lacks {want:?}");
        }
    }
}
