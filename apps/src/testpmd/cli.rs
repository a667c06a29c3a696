//! The interactive prompt's commands (a subset of DPDK testpmd's, spelled
//! the same way) and their parser.

use super::csum::CsumLayer;
use super::options::FwdMode;
use super::portcmd::{self, PortCommand};
use std::path::PathBuf;

/// `all` or one port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSel {
    All,
    One(usize),
}

impl PortSel {
    /// The port ids this selects among `nports`, or an error naming the
    /// bad id.
    pub fn ports(self, nports: usize) -> Result<Vec<usize>, String> {
        match self {
            PortSel::All => Ok((0..nports).collect()),
            PortSel::One(p) if p < nports => Ok(vec![p]),
            PortSel::One(p) => Err(format!(
                "port {p} does not exist (ports are 0..{})",
                nports.saturating_sub(1)
            )),
        }
    }
}

/// What `show port` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    Info,
    Stats,
    Xstats,
}

/// One command line of the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Empty line or comment.
    Nothing,
    Help,
    Start,
    /// `start tx_first [N]`: N txonly bursts on every stream, then forward.
    StartTxFirst(u32),
    Stop,
    Quit,
    ShowPort(ShowWhat, PortSel),
    /// `show config fwd`: the mode and the streams.
    ShowConfigFwd,
    ClearPortStats(PortSel),
    /// `set fwd MODE [retry]`.
    SetFwd(FwdMode, bool),
    /// `set burst tx delay D retry N`: the retry's wait (us) and count.
    SetBurstTx {
        delay_us: u32,
        retry: u32,
    },
    /// `csum set ip|udp|tcp hw|sw PORT`.
    CsumSet {
        layer: CsumLayer,
        hw: bool,
        port: usize,
    },
    /// `csum show PORT`.
    CsumShow(usize),
    /// `set record-core-cycles on|off`.
    SetRecordCoreCycles(bool),
    /// `set record-burst-stats on|off`.
    SetRecordBurstStats(bool),
    SetPromisc(PortSel, bool),
    SetAllmulti(PortSel, bool),
    /// `set capture PORT FILE`: record the port's frames from the next start.
    SetCapture {
        port: usize,
        path: PathBuf,
    },
    /// `set capture off`.
    CaptureOff,
    /// `flow ...` ([`super::flow`]).
    Flow(super::flow::FlowCommand),
    /// `port ...` and `dump_mempool` ([`portcmd`]).
    Port(PortCommand),
}

/// The prompt's help text.
pub const HELP: &str = "\
commands:
  start                              start forwarding
  start tx_first [N]                 send N (default 1) txonly bursts on every stream, then forward
  stop                               stop forwarding and print the forward statistics
  show port info|stats|xstats all|N  port details, counters (with throughput since the last show), extended counters
  show config fwd                    forward mode and streams
  clear port stats all|N             reset a port's counters
  set fwd io|mac|macswap|rxonly|txonly|flowgen|icmpecho|5tswap|csum|noisy [retry]
  set burst tx delay US retry N      with retry: wait US microseconds, at most N times, for TX room
  csum set ip|udp|tcp hw|sw N        where the csum mode computes each checksum for TX port N
  csum show N
  set record-core-cycles on|off      cycles per packet in the forward report
  set record-burst-stats on|off      RX/TX burst-size lines in the forward report
  set promisc all|N on|off
  set allmulti all|N on|off
  set capture N FILE                 write port N's received and sent frames to a pcap file (from the next start)
  set capture off
  quit                               stop forwarding if it runs, close the ports and exit
port lifecycle:";

fn port_sel(w: Option<&str>) -> Result<PortSel, String> {
    match w {
        Some("all") => Ok(PortSel::All),
        Some(n) => n
            .parse()
            .map(PortSel::One)
            .map_err(|_| format!("{n:?} is not a port id (a number or all)")),
        None => Err("missing port: give a port id or all".into()),
    }
}

fn on_off(w: Option<&str>) -> Result<bool, String> {
    match w {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(x) => Err(format!("{x:?}: expected on or off")),
        None => Err("missing on|off".into()),
    }
}

fn end(mut words: std::slice::Iter<'_, &str>, c: Command) -> Result<Command, String> {
    match words.next() {
        None => Ok(c),
        Some(w) => Err(format!("unexpected {w:?} at the end of the command")),
    }
}

/// Parses one line; the error is a one-line message for the user.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.split('#').next().unwrap_or("").trim();
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut w = words.iter();
    let Some(first) = w.next() else {
        return Ok(Command::Nothing);
    };
    let c = match *first {
        "help" => Command::Help,
        "start" => match w.next().copied() {
            None => Command::Start,
            Some("tx_first") => match w.next() {
                None => Command::StartTxFirst(1),
                Some(n) => Command::StartTxFirst(
                    n.parse()
                        .ok()
                        .filter(|v| (1..=u32::from(u16::MAX)).contains(v))
                        .ok_or_else(|| {
                            format!("start tx_first: {n:?} is not a burst count (1..=65535)")
                        })?,
                ),
            },
            Some(x) => return Err(format!("unexpected {x:?} at the end of the command")),
        },
        "csum" => match w.next().copied() {
            Some("set") => {
                let l = w.next().ok_or("csum set: missing ip|udp|tcp")?;
                let layer = CsumLayer::parse(l).ok_or_else(|| {
                    format!("csum set: {l:?}: expected ip, udp, tcp, sctp, outer-ip or outer-udp")
                })?;
                let hw = match w.next().copied() {
                    Some("hw") => true,
                    Some("sw") => false,
                    _ => return Err("csum set: expected hw or sw".into()),
                };
                let p = w.next().ok_or("csum set: missing port id")?;
                let port = p.parse().map_err(|_| format!("{p:?} is not a port id"))?;
                Command::CsumSet { layer, hw, port }
            }
            Some("show") => {
                let p = w.next().ok_or("csum show: missing port id")?;
                Command::CsumShow(p.parse().map_err(|_| format!("{p:?} is not a port id"))?)
            }
            _ => return Err("csum: expected set or show".into()),
        },
        "stop" => Command::Stop,
        "quit" | "exit" => Command::Quit,
        "port" | "dump_mempool" => return portcmd::parse(&words).map(Command::Port),
        "show" => match w.next().copied() {
            Some("port") => {
                let what = match w.next().copied() {
                    Some("info") => ShowWhat::Info,
                    Some("stats") => ShowWhat::Stats,
                    Some("xstats") => ShowWhat::Xstats,
                    Some(x) => {
                        return Err(format!("show port {x}: expected info, stats or xstats"));
                    }
                    None => return Err("show port: expected info, stats or xstats".into()),
                };
                Command::ShowPort(what, port_sel(w.next().copied())?)
            }
            Some("config") => match w.next().copied() {
                Some("fwd") => Command::ShowConfigFwd,
                _ => return Err("show config: expected fwd".into()),
            },
            _ => return Err("show: expected port or config".into()),
        },
        "clear" => match (w.next().copied(), w.next().copied()) {
            (Some("port"), Some("stats")) => Command::ClearPortStats(port_sel(w.next().copied())?),
            _ => return Err("clear: expected clear port stats all|N".into()),
        },
        "set" => match w.next().copied() {
            Some("fwd") => {
                let m = w.next().ok_or("set fwd: missing mode")?;
                let mode = m.parse()?;
                match w.next().copied() {
                    None => Command::SetFwd(mode, false),
                    Some("retry") => Command::SetFwd(mode, true),
                    Some(x) => return Err(format!("set fwd: {x:?}: expected retry or nothing")),
                }
            }
            Some("burst") => {
                let num = |t: Option<&&str>, what: &str| -> Result<u32, String> {
                    let t = t.ok_or_else(|| format!("set burst tx: missing {what}"))?;
                    t.parse()
                        .map_err(|_| format!("{t:?} is not a number ({what})"))
                };
                if (w.next().copied(), w.next().copied()) != (Some("tx"), Some("delay")) {
                    return Err("set burst: expected set burst tx delay US retry N".into());
                }
                let delay_us = num(w.next(), "delay")?;
                if w.next().copied() != Some("retry") {
                    return Err("set burst tx delay US: expected retry N next".into());
                }
                Command::SetBurstTx {
                    delay_us,
                    retry: num(w.next(), "retry count")?,
                }
            }
            Some("record-core-cycles") => Command::SetRecordCoreCycles(on_off(w.next().copied())?),
            Some("record-burst-stats") => Command::SetRecordBurstStats(on_off(w.next().copied())?),
            Some("promisc") => {
                let p = port_sel(w.next().copied())?;
                Command::SetPromisc(p, on_off(w.next().copied())?)
            }
            Some("allmulti") => {
                let p = port_sel(w.next().copied())?;
                Command::SetAllmulti(p, on_off(w.next().copied())?)
            }
            Some("capture") => match w.next().copied() {
                Some("off") => Command::CaptureOff,
                Some(p) => {
                    let port = p.parse().map_err(|_| format!("{p:?} is not a port id"))?;
                    let path = w.next().ok_or("set capture: missing file name")?;
                    Command::SetCapture {
                        port,
                        path: PathBuf::from(path),
                    }
                }
                None => return Err("set capture: expected N FILE or off".into()),
            },
            _ => {
                return Err(
                    "set: expected fwd, burst, promisc, allmulti, capture, record-core-cycles or record-burst-stats"
                        .into(),
                );
            }
        },
        "flow" => return super::flow::parse(&words[1..]).map(Command::Flow),
        other => return Err(format!("unknown command {other:?}; type help")),
    };
    end(w, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpdk_spellings_parse() {
        assert_eq!(parse("start"), Ok(Command::Start));
        assert_eq!(parse("  stop  "), Ok(Command::Stop));
        assert_eq!(parse("quit"), Ok(Command::Quit));
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("# comment"), Ok(Command::Nothing));
        assert_eq!(
            parse("show port stats all"),
            Ok(Command::ShowPort(ShowWhat::Stats, PortSel::All))
        );
        assert_eq!(
            parse("show port info 1"),
            Ok(Command::ShowPort(ShowWhat::Info, PortSel::One(1)))
        );
        assert_eq!(
            parse("show port xstats 0"),
            Ok(Command::ShowPort(ShowWhat::Xstats, PortSel::One(0)))
        );
        assert_eq!(
            parse("clear port stats all"),
            Ok(Command::ClearPortStats(PortSel::All))
        );
        assert_eq!(
            parse("set fwd macswap"),
            Ok(Command::SetFwd(FwdMode::Macswap, false))
        );
        assert_eq!(
            parse("set fwd io retry"),
            Ok(Command::SetFwd(FwdMode::Io, true))
        );
        assert_eq!(
            parse("set fwd 5tswap"),
            Ok(Command::SetFwd(FwdMode::FiveTswap, false))
        );
        assert_eq!(parse("start tx_first"), Ok(Command::StartTxFirst(1)));
        assert_eq!(parse("start tx_first 4"), Ok(Command::StartTxFirst(4)));
        assert_eq!(
            parse("set burst tx delay 20 retry 5"),
            Ok(Command::SetBurstTx {
                delay_us: 20,
                retry: 5
            })
        );
        assert_eq!(
            parse("csum set udp hw 1"),
            Ok(Command::CsumSet {
                layer: CsumLayer::Udp,
                hw: true,
                port: 1
            })
        );
        assert_eq!(parse("csum show 0"), Ok(Command::CsumShow(0)));
        assert_eq!(
            parse("set record-burst-stats on"),
            Ok(Command::SetRecordBurstStats(true))
        );
        assert_eq!(
            parse("set record-core-cycles off"),
            Ok(Command::SetRecordCoreCycles(false))
        );
        assert_eq!(
            parse("set promisc 0 off"),
            Ok(Command::SetPromisc(PortSel::One(0), false))
        );
        assert_eq!(
            parse("set allmulti all on"),
            Ok(Command::SetAllmulti(PortSel::All, true))
        );
        assert_eq!(
            parse("set capture 1 /tmp/x.pcap"),
            Ok(Command::SetCapture {
                port: 1,
                path: "/tmp/x.pcap".into()
            })
        );
        assert_eq!(parse("set capture off"), Ok(Command::CaptureOff));
        assert_eq!(parse("show config fwd"), Ok(Command::ShowConfigFwd));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (line, needle) in [
            ("bogus", "unknown command"),
            ("show port", "expected info"),
            ("show port stats", "missing port"),
            ("show port stats x", "not a port id"),
            ("set fwd csumx", "unknown forward mode"),
            ("set fwd io again", "expected retry"),
            ("start tx_first 0", "burst count"),
            ("start tx_first x", "burst count"),
            ("start now", "unexpected \"now\""),
            ("csum set foo hw 0", "expected ip"),
            ("csum set ip maybe 0", "hw or sw"),
            ("csum set ip hw", "missing port"),
            ("csum show", "missing port"),
            ("set burst tx delay x retry 1", "not a number"),
            ("set burst tx delay 1 again 1", "retry N"),
            ("set fwd", "missing mode"),
            ("set promisc all maybe", "expected on or off"),
            ("start now", "unexpected \"now\""),
            ("clear stats", "clear port stats"),
            ("set capture 0", "missing file"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(needle), "{line:?}: {e:?}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn port_selection_is_checked() {
        assert_eq!(PortSel::All.ports(2), Ok(vec![0, 1]));
        assert_eq!(PortSel::One(1).ports(2), Ok(vec![1]));
        assert!(
            PortSel::One(2)
                .ports(2)
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
