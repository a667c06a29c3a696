//! apps: the programs users run (testpmd, l2fwd, devbind, devmem-rx,
//! devmem-tx) and
//! the guest-side test programs (probe, hwcheck, pmdcheck).
pub mod devmem;
pub mod pattern;
pub mod testpmd;
