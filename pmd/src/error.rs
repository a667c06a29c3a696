//! The driver's error type: one variant per failing step, each message
//! saying what to check.

use hw::PciAddress;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open PCI device {addr} through VFIO: {source}")]
    Open {
        addr: PciAddress,
        #[source]
        source: hw::Error,
    },
    #[error("cannot read the PCI IDs of {addr}: {source}")]
    PciIds {
        addr: PciAddress,
        #[source]
        source: hw::Error,
    },
    #[error(
        "{addr} is {vendor:04x}:{device:04x}, which no driver here supports (igb 82576, e1000e 82574L)"
    )]
    Unsupported {
        addr: PciAddress,
        vendor: u16,
        device: u16,
    },
    #[error("{addr} is an {name} ({vendor:04x}:{device:04x}), refused: {why}")]
    Refused {
        addr: PciAddress,
        name: &'static str,
        vendor: u16,
        device: u16,
        why: &'static str,
    },
    #[error("cannot map BAR{bar} of {addr}: {source}")]
    MapBar {
        addr: PciAddress,
        bar: u32,
        #[source]
        source: hw::Error,
    },
    #[error(
        "cannot set the PCI command register (bus mastering, memory space) of {addr}: {source}"
    )]
    BusMaster {
        addr: PciAddress,
        #[source]
        source: hw::Error,
    },
    #[error("{addr}: device reset did not complete within {ms} ms")]
    ResetTimeout { addr: PciAddress, ms: u64 },
    #[error(
        "{addr}: the NVM auto-read after reset (EECD.AUTO_RD) did not complete within {ms} ms; check the card's EEPROM/flash"
    )]
    AutoReadTimeout { addr: PciAddress, ms: u64 },
    #[error(
        "{addr}: SWSM.SMBI stayed set for {ms} ms: another driver or the boot agent holds the software semaphore"
    )]
    SmbiTimeout { addr: PciAddress, ms: u64 },
    #[error(
        "{addr}: SWSM.SWESMBI did not latch within {ms} ms: the manageability firmware holds the software/firmware semaphore"
    )]
    SwesmbiTimeout { addr: PciAddress, ms: u64 },
    #[error(
        "{addr}: the {resource} semaphore in SW_FW_SYNC ({sync:#010x}) stayed taken for {ms} ms by firmware or another port"
    )]
    SwFwSyncTimeout {
        addr: PciAddress,
        resource: &'static str,
        sync: u32,
        ms: u64,
    },
    #[error(
        "{addr}: EXTCNF_CTRL.MDIO_SW_OWNERSHIP did not latch within {ms} ms: the manageability firmware owns the PHY/NVM"
    )]
    MdioOwnershipTimeout { addr: PciAddress, ms: u64 },
    #[error("{addr}: NVM word {word:#x} read through EERD did not complete within {ms} ms")]
    NvmTimeout {
        addr: PciAddress,
        word: u32,
        ms: u64,
    },
    #[error(
        "{addr}: the NVM checksum is not valid: words 0x00-0x3F sum to {sum:#06x}, not 0xbaba \
         (a corrupt or blank EEPROM; Intel's drivers refuse such a device too)"
    )]
    NvmChecksum { addr: PciAddress, sum: u16 },
    #[error("{addr}: PHY software reset (BMCR.RESET) did not complete within {ms} ms")]
    PhyResetTimeout { addr: PciAddress, ms: u64 },
    #[error("{addr}: PHY register {reg} access through MDIC {what}")]
    Mdic {
        addr: PciAddress,
        reg: u32,
        what: &'static str,
    },
    #[error(
        "{addr}: link did not come up within {ms} ms; check that the port is connected (in QEMU: that the netdev's peer is attached)"
    )]
    LinkTimeout { addr: PciAddress, ms: u64 },
    #[error("{addr}: RX/TX queue {queue} did not report enabled within {ms} ms")]
    QueueEnableTimeout {
        addr: PciAddress,
        queue: u16,
        ms: u64,
    },
    #[error("invalid port configuration: {0}")]
    Config(String),
    #[error("cannot allocate the descriptor ring of {dir} queue {queue}: {source}")]
    RingAlloc {
        dir: &'static str,
        queue: u16,
        #[source]
        source: hw::Error,
    },
    #[error(
        "RX queue {queue}: the pool has fewer than {needed} free buffers to fill the ring; give it more buffers or use fewer/smaller rings"
    )]
    PoolTooSmall { queue: u16, needed: usize },
    #[error(
        "RX queue {queue}: pool buffers of {buf_size} bytes are too small (at least {min} bytes needed)"
    )]
    BufferTooSmall {
        queue: u16,
        buf_size: usize,
        min: usize,
    },
    #[error(
        "RX queue {queue}: header split is not available on {driver} ({why}); receive into device memory on an igb (82576) port"
    )]
    HeaderSplitUnsupported {
        driver: &'static str,
        queue: u16,
        why: &'static str,
    },
    #[error(
        "RX queue {queue}: the {role} pool {pool:?} holds {got} buffers, but {role} buffers must be {want}"
    )]
    WrongPoolKind {
        queue: u16,
        role: &'static str,
        pool: String,
        got: &'static str,
        want: &'static str,
    },
    #[error(
        "RX queue {queue}: header buffers of {buf_size} bytes are too small (at least {min} bytes, for Ethernet + VLAN + IPv6 + TCP-with-options headers); give the header pool larger buffers"
    )]
    HeaderBufferTooSmall {
        queue: u16,
        buf_size: usize,
        min: usize,
    },
    #[error("{dir} queue {queue} does not exist or was already taken")]
    NoSuchQueue { dir: &'static str, queue: u16 },
    #[error("{addr}: the port is started; stop it first")]
    PortStarted { addr: PciAddress },
    #[error("{addr}: the port is closed")]
    PortClosed { addr: PciAddress },
    #[error("{addr}: the port is stopped; start it first")]
    PortStopped { addr: PciAddress },
    #[error(
        "{addr}: {dir} queue {queue} is still taken by the application; drop its handle (give it back) first"
    )]
    QueueInUse {
        addr: PciAddress,
        dir: &'static str,
        queue: u16,
    },
    #[error("{driver} cannot restart a port: {why}")]
    RestartUnsupported {
        driver: &'static str,
        why: &'static str,
    },
    #[error(
        "{addr}: {what} interrupts are off; open the port with PortConfig::intr_conf.{field} set"
    )]
    InterruptsOff {
        addr: PciAddress,
        what: &'static str,
        field: &'static str,
    },
    #[error("{addr}: the link event queue was already taken")]
    LinkEventsTaken { addr: PciAddress },
    #[error(
        "{addr}: cannot enable {vectors} MSI-X vectors (one for link changes, one per RX queue): {source}"
    )]
    Msix {
        addr: PciAddress,
        vectors: u32,
        #[source]
        source: hw::Error,
    },
    #[error(
        "RX queue {queue}: RX interrupts are off; open the port with PortConfig::intr_conf.rxq set"
    )]
    RxInterruptsOff { queue: u16 },
    #[error("interrupt eventfd: {0}")]
    Interrupt(#[source] std::io::Error),
    #[error("MAC address filter table is full ({max} unicast addresses)")]
    FilterFull { max: usize },
    #[error("MTU {mtu} is outside {min}..={max}")]
    BadMtu { mtu: u16, min: u16, max: u16 },
    #[error("e1000e packet split (header split): {0}")]
    PacketSplit(#[from] crate::e1000e::PacketSplitError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
