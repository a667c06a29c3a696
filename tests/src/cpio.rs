//! A writer for the `newc` cpio format the kernel unpacks as an initramfs.

use std::io::{self, Write};

/// One archive being written; entries are appended in order, parents first.
pub struct Newc<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
const S_IFLNK: u32 = 0o120000;

impl<W: Write> Newc<W> {
    pub fn new(out: W) -> Self {
        Newc {
            out,
            ino: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        self.entry(path, S_IFDIR | 0o755, (0, 0), &[])
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | mode, (0, 0), data)
    }

    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | 0o600, (major, minor), &[])
    }

    /// A symbolic link at `path` pointing to `target` (the link's data).
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name_len = path.len() + 1;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio entry over 4 GiB"))?;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name_len, 0
        );
        self.ino += 1;
        self.put(header.as_bytes())?;
        self.put(path.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_named() {
        let mut a = Newc::new(Vec::new());
        a.dir("bin").unwrap();
        a.file("bin/x", 0o755, b"hello").unwrap();
        let v = a.finish().unwrap();
        assert_eq!(v.len() % 4, 0);
        assert!(v.starts_with(b"070701"));
        let s = String::from_utf8_lossy(&v);
        assert!(s.contains("bin/x\0"));
        assert!(s.contains("hello"));
        assert!(s.contains("TRAILER!!!"));
        // The file header's size field (7th field) is 5.
        let at = s.find("070701").unwrap();
        let second = s[at + 6..].find("070701").unwrap() + at + 6;
        assert_eq!(&s[second + 6 + 6 * 8..second + 6 + 7 * 8], "00000005");
    }

    #[test]
    fn a_symlink_holds_its_target_as_data() {
        let mut a = Newc::new(Vec::new());
        a.symlink("lib/libx.so.1", "libx.so.1.0").unwrap();
        let v = a.finish().unwrap();
        let s = String::from_utf8_lossy(&v);
        // mode field (2nd) is S_IFLNK | 0777, size (7th) the target's length.
        assert_eq!(&s[6 + 8..6 + 2 * 8], "0000a1ff");
        assert_eq!(&s[6 + 6 * 8..6 + 7 * 8], "0000000b");
        assert!(s.contains("lib/libx.so.1\0"));
        assert!(s.contains("libx.so.1.0"));
    }
}
