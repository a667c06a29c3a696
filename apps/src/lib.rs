//! apps: the programs users run (testpmd, l2fwd, devbind, devmem-rx) and
//! the guest-side test programs (probe, hwcheck, pmdcheck).
pub mod pattern;
pub mod testpmd;
