//! Lcore lists as DPDK's `-l` takes them (`0-1,3`), checked against the
//! CPUs this process may run on.

use std::collections::BTreeSet;

/// Highest lcore id accepted (the pool keeps one cache per id below it).
pub const MAX_LCORE: usize = pool::lcore::MAX_LCORES - 1;

/// Parses `0-1,3,5-6` into ascending, distinct ids. The error says what is
/// wrong in words a user can act on.
pub fn parse_list(s: &str) -> Result<Vec<usize>, String> {
    let mut set = BTreeSet::new();
    if s.trim().is_empty() {
        return Err("empty lcore list (expected e.g. 0-1 or 0,2)".into());
    }
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_id(a, s)?, parse_id(b, s)?),
            None => {
                let id = parse_id(part, s)?;
                (id, id)
            }
        };
        if lo > hi {
            return Err(format!("lcore range {part} in {s:?} runs backwards"));
        }
        for id in lo..=hi {
            if !set.insert(id) {
                return Err(format!("lcore {id} appears twice in {s:?}"));
            }
        }
    }
    Ok(set.into_iter().collect())
}

fn parse_id(t: &str, whole: &str) -> Result<usize, String> {
    let id: usize = t
        .trim()
        .parse()
        .map_err(|_| format!("{t:?} in lcore list {whole:?} is not a number"))?;
    if id > MAX_LCORE {
        return Err(format!("lcore {id} is out of range (0..={MAX_LCORE})"));
    }
    Ok(id)
}

/// The CPU ids this process may be pinned to, ascending.
pub fn available_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Compact form of a sorted id list: `0-3,6`.
pub fn format_list(ids: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Refuses ids that are not in `available` (the CPUs this process may use).
pub fn check_exist(ids: &[usize], available: &[usize]) -> Result<(), String> {
    for id in ids {
        if !available.contains(id) {
            return Err(format!(
                "lcore {id} does not exist: this process may run on CPUs {}",
                format_list(available)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_parse_sorted() {
        assert_eq!(parse_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_list("3,0-1").unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_list("7").unwrap(), vec![7]);
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(parse_list("").is_err());
        assert!(parse_list("a").unwrap_err().contains("not a number"));
        assert!(parse_list("2-1").unwrap_err().contains("backwards"));
        assert!(parse_list("0,0").unwrap_err().contains("twice"));
        assert!(parse_list("500").unwrap_err().contains("out of range"));
    }

    #[test]
    fn format_compacts_runs() {
        assert_eq!(format_list(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(format_list(&[1]), "1");
    }

    #[test]
    fn missing_cpu_is_named() {
        let e = check_exist(&[0, 5], &[0, 1]).unwrap_err();
        assert_eq!(
            e,
            "lcore 5 does not exist: this process may run on CPUs 0-1"
        );
        assert!(check_exist(&[1], &[0, 1]).is_ok());
    }
}
