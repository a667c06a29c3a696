//! End-to-end tests of the igb (82576) driver: the guest runs `pmdcheck` on
//! the emulated 82576, the host-side frame peer sends and receives frames on
//! its wire, and the test checks every byte, the metadata the driver reports
//! (RSS hash and queue against a Toeplitz model over every hash type, VLAN,
//! checksum flags), what the device transmitted for checksum/TSO/VLAN
//! offload requests, the port counters, and that every pool buffer is back
//! after close. The flows are the ones every driver passes, in
//! [`rig::pmdcheck`].

use pmd::rss::{self, DEFAULT_KEY, HashTypes};
use rig::pmdcheck::{self, RssModel, TestPort, VlanInsert};

const IGB: TestPort = TestPort {
    index: 0,
    driver: "igb",
    device: "82576",
};

#[test]
fn igb_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags() {
    rig::retry_on_emulator_fault(
        "igb_receives_every_frame_byte_for_byte_with_rss_vlan_and_checksum_flags",
        || {
            // The 82576 hashes every type: IPv4/IPv6 addresses, TCP and UDP ports.
            let reta = rss::default_reta(4);
            pmdcheck::receive_every_frame(
                IGB,
                &RssModel {
                    queues: 4,
                    hash: &|f| rss::frame_hash(&DEFAULT_KEY, HashTypes::ALL, f),
                    queue_of: &|h| usize::from(rss::queue_for_hash(&reta, h)),
                },
            );
        },
    )
}

#[test]
fn igb_with_one_queue_and_no_rx_offloads_asked_reports_no_hash_and_no_checksum_flags() {
    rig::retry_on_emulator_fault(
        "igb_with_one_queue_and_no_rx_offloads_asked_reports_no_hash_and_no_checksum_flags",
        || pmdcheck::rx_offloads_only_when_asked(IGB, "--no-rx-cksum", None, false),
    )
}

#[test]
fn igb_echoes_frames_of_every_size_byte_for_byte_and_counts_them() {
    rig::retry_on_emulator_fault(
        "igb_echoes_frames_of_every_size_byte_for_byte_and_counts_them",
        || pmdcheck::echo_every_size(IGB),
    )
}

#[test]
fn igb_transmit_offloads_are_what_the_peer_receives() {
    rig::retry_on_emulator_fault("igb_transmit_offloads_are_what_the_peer_receives", || {
        pmdcheck::transmit_offloads(
            IGB,
            &[VlanInsert {
                tag: "vlan",
                tci: 100,
                vlan_strip: false,
                first_flow: 200,
            }],
        )
    })
}
