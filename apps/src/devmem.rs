//! What the device-memory programs (`devmem-rx`, `devmem-tx`) share: the
//! `main` around their `run` (usage, exit status, the error line) and the
//! opening of the device-memory region (another device's BAR through
//! VFIO).

use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser;
use hw::PciAddress;
use hw::devmem::DeviceMemory;

/// The device-memory region could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot open the device-memory provider {addr}: {source}")]
    Open {
        addr: PciAddress,
        #[source]
        source: hw::Error,
    },
    #[error("cannot map BAR{bar} of {addr} as device memory: {source}")]
    Map {
        addr: PciAddress,
        bar: u32,
        #[source]
        source: hw::Error,
    },
}

/// Opens `addr` through VFIO and maps its BAR `bar` as device memory (the
/// mapping keeps the device open).
pub fn open_region(addr: PciAddress, bar: u32) -> Result<DeviceMemory, RegionError> {
    let dev = hw::vfio::Device::open(&addr).map_err(|source| RegionError::Open { addr, source })?;
    DeviceMemory::from_bar(&dev, bar).map_err(|source| RegionError::Map { addr, bar, source })
}

/// A device-memory program's `main`: parses `C` (bad usage prints clap's
/// message and exits 2, `--help` exits 0), runs `run`, and on failure
/// prints `NAME: error: MESSAGE` on stderr and exits 1.
pub fn main<C: Parser, E: Display>(name: &str, run: impl FnOnce(&C) -> Result<(), E>) -> ExitCode {
    env_logger::init();
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_device_that_cannot_be_opened_is_a_typed_open_error() {
        // No such device (bus ff) on any machine the tests run on.
        let addr: PciAddress = "0000:ff:1f.7".parse().expect("address");
        let err = open_region(addr, 2).expect_err("no such device");
        assert!(matches!(err, RegionError::Open { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot open the device-memory provider 0000:ff:1f.7: "),
            "{err}"
        );
    }
}
