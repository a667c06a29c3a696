//! The QEMU guest rig.
//!
//! There is no NIC on the development machines and no VFIO on the host: the
//! hardware every end-to-end test, demo and benchmark drives is QEMU's
//! emulated igb (82576) and e1000e (82574L) in a guest, behind the guest
//! kernel's vfio-pci and an emulated VT-d IOMMU, fed with frames by a
//! host-side [`FramePeer`] on each NIC's netdev socket.
//!
//! ```no_run
//! use rig::{Vm, VmConfig};
//! let out = Vm::run(VmConfig::default(), "probe").unwrap();
//! assert!(out.success(), "{}", out.output);
//! ```

pub mod bench;
pub mod cpio;
pub mod devmem;
pub mod frames;
pub mod image;
pub mod peer;
pub mod pmdcheck;
pub mod shm;
pub mod testpmd_out;
pub mod trace;
pub mod traffic;
pub mod vm;

pub use peer::FramePeer;
pub use shm::ShmFile;
pub use vm::{
    Echo, IVSHMEM_PCI, Nic, NicModel, RunOutput, Vm, VmConfig, mac_str, nic_mac, nic_pci,
    retry_on_emulator_fault, take_emulator_fault,
};

use std::path::{Path, PathBuf};

/// Everything that can stop the rig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{0}: run `scripts/setup` as root first (it installs QEMU >= 8.2, busybox-static and the guest kernel)"
    )]
    SetupMissing(String),
    #[error("building the guest image: {0}")]
    Build(String),
    #[error("QEMU: {0}")]
    Qemu(String),
    #[error("the guest did not start its command within {secs} s; console tail:\n{tail}")]
    BootTimeout { secs: u64, tail: String },
    #[error(
        "the guest stalled: no heartbeat for {secs} s (a TCG vCPU stopped); console tail:\n{tail}"
    )]
    Stalled { secs: u64, tail: String },
    #[error("{what} timed out after {secs} s; console tail:\n{tail}")]
    Timeout {
        secs: u64,
        what: String,
        tail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
