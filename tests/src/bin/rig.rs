//! `rig`: boot the guest and run one command in it.
//!
//! `cargo run -p rig -- [--timeout SECS] [--nics igb,e1000e] -- <guest command...>`
//! Prints the guest console as it streams and exits with the command's status.

use rig::{NicModel, Vm, VmConfig};
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: rig [--timeout SECS] [--nics igb,e1000e,...] [--no-ivshmem] [--dpdk-image] -- <guest command>"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = VmConfig::default();
    let mut args = std::env::args().skip(1);
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--timeout" => match args.next().and_then(|v| v.parse().ok()) {
                Some(s) => config.timeout = Duration::from_secs(s),
                None => return usage(),
            },
            "--nics" => {
                let Some(list) = args.next() else {
                    return usage();
                };
                let mut nics = Vec::new();
                for n in list.split(',') {
                    nics.push(match n {
                        "igb" => NicModel::Igb,
                        "e1000e" => NicModel::E1000e,
                        _ => return usage(),
                    });
                }
                config.nics = nics;
            }
            "--no-ivshmem" => config.ivshmem_mib = None,
            // The bench's image variant: DPDK's testpmd next to ours.
            "--dpdk-image" => match rig::image::dpdk_image() {
                Ok(img) => config.image = Some(img),
                Err(e) => {
                    eprintln!("rig: {e}");
                    return ExitCode::from(1);
                }
            },
            "--" => {
                command.extend(args.by_ref());
            }
            "-h" | "--help" => return usage(),
            _ => {
                command.push(a);
                command.extend(args.by_ref());
            }
        }
    }
    if command.is_empty() {
        return usage();
    }
    match Vm::run(config, &command.join(" ")) {
        Ok(out) => {
            eprintln!(
                "rig: guest command exited with {} after {:.1} s",
                out.status,
                out.elapsed.as_secs_f64()
            );
            ExitCode::from(u8::try_from(out.status).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("rig: {e}");
            ExitCode::from(1)
        }
    }
}
