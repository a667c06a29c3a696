//! apps
pub mod testpmd;
