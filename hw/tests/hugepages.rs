//! Host tests of the hugepage half of DMA memory (no VFIO needed).
//! They need 2 MiB hugepages reserved, as `scripts/setup` does (64 pages).

use hw::hugepages::HugePages;
use hw::{Error, HugePageSize};

fn require_free_2m(n: u64) -> u64 {
    let (total, free) = HugePageSize::Size2M.reserved();
    assert!(
        free >= n,
        "this test needs {n} free 2 MiB hugepages, the host has {free} free of {total}: \
         run scripts/setup (it reserves 64 with /proc/sys/vm/nr_hugepages)"
    );
    free
}

/// The /proc/self/smaps block of the mapping starting at `p`.
fn smaps_block(p: *mut u8) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let start = format!("{:x}-", p as usize);
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    let Some(first) = lines.next() else {
        return String::new();
    };
    // Field lines ("Name:  value") follow until the next mapping's header.
    let rest: Vec<&str> = lines
        .take_while(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.ends_with(':'))
        })
        .collect();
    format!("{first}\n{}", rest.join("\n"))
}

#[test]
fn maps_shared_populated_rounded_hugepages() {
    require_free_2m(2);
    let m = HugePages::map(3 << 20, HugePageSize::Size2M).expect("map 3 MiB of 2 MiB pages");
    assert_eq!(m.len(), 4 << 20, "3 MiB rounds up to two 2 MiB pages");
    let p = m.as_mut_ptr();
    assert_eq!(p as usize % (2 << 20), 0, "hugepage-aligned");
    // Before any touch: hugetlbfs-backed, shared, DONTFORK, and populated.
    let block = smaps_block(p);
    assert!(
        block.contains("hw-dma"),
        "mapping not found or not the memfd:\n{block}"
    );
    assert!(block.contains("KernelPageSize:     2048 kB"), "{block}");
    let flags = block
        .lines()
        .find(|l| l.starts_with("VmFlags:"))
        .unwrap_or_default();
    assert!(
        flags.contains(" dc"),
        "MADV_DONTFORK (dc: VM_DONTCOPY) missing:\n{block}"
    );
    assert!(flags.contains(" sh"), "not shared:\n{block}");
    assert!(flags.contains(" ht"), "not hugetlb:\n{block}");
    let hugetlb_kb: u64 = block
        .lines()
        .filter(|l| l.starts_with("Private_Hugetlb:") || l.starts_with("Shared_Hugetlb:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert_eq!(hugetlb_kb, 4096, "not populated at map time:\n{block}");
    // Every byte is reachable.
    for off in [0, 4095, (2 << 20) + 17, (4 << 20) - 1] {
        // SAFETY: off < len; the mapping is ours and no device is attached.
        unsafe { p.add(off).write_volatile(off as u8 ^ 0x5a) };
    }
    for off in [0, 4095, (2 << 20) + 17, (4 << 20) - 1] {
        // SAFETY: as above.
        assert_eq!(unsafe { p.add(off).read_volatile() }, off as u8 ^ 0x5a);
    }
    drop(m);
    assert!(smaps_block(p).is_empty(), "still mapped after drop");
}

#[test]
fn too_few_hugepages_says_how_many_and_how() {
    let free = require_free_2m(1);
    let want = (free as usize + 8) << 21;
    let err = HugePages::map(want, HugePageSize::Size2M).unwrap_err();
    let msg = err.to_string();
    match err {
        Error::NoHugepages { needed, size, .. } => {
            assert_eq!(needed, free + 8);
            assert_eq!(size, HugePageSize::Size2M);
        }
        other => panic!("expected NoHugepages, got {other:?}"),
    }
    assert!(msg.contains("not enough 2 MiB hugepages"), "{msg}");
    assert!(msg.contains(&format!("{} needed", free + 8)), "{msg}");
    assert!(
        msg.contains("> /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
        "{msg}"
    );
}

#[test]
fn empty_mapping_is_refused() {
    assert!(matches!(
        HugePages::map(0, HugePageSize::Size2M),
        Err(Error::EmptyRegion)
    ));
}
