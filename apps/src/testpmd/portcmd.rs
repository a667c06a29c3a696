//! The prompt's port lifecycle commands, spelled as DPDK testpmd's: `port
//! stop|start|close N|all`, `port config all rxq|txq|rxd|txd N`, `port
//! config mtu N V`, and `dump_mempool` (the pool's buffers in use). The
//! program side is `app::lifecycle`.

use super::cli::PortSel;

/// A queue setting `port config all` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueParam {
    Rxq,
    Txq,
    Rxd,
    Txd,
}

impl QueueParam {
    pub fn name(self) -> &'static str {
        match self {
            QueueParam::Rxq => "rxq",
            QueueParam::Txq => "txq",
            QueueParam::Rxd => "rxd",
            QueueParam::Txd => "txd",
        }
    }
}

/// One port lifecycle command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortCommand {
    Stop(PortSel),
    Start(PortSel),
    Close(PortSel),
    /// `port config all rxq|txq|rxd|txd N`: for the next `port start`.
    ConfigAll(QueueParam, u16),
    /// `port config mtu N V`: at once, and kept over restarts.
    ConfigMtu {
        port: usize,
        mtu: u16,
    },
    /// `dump_mempool`.
    DumpMempool,
}

/// Help lines of these commands.
pub const HELP: &str = "\
  port stop|start|close all|N        stop a port, start it again (with its new configuration), close it
  port config all rxq|txq|rxd|txd N  queues or descriptors per queue from the next port start (ports stopped)
  port config mtu N V                MTU of port N
  dump_mempool                       buffers of the mbuf pool in use";

fn number<T: std::str::FromStr>(w: Option<&&str>, what: &str) -> Result<T, String> {
    let w = w.ok_or_else(|| format!("missing {what}"))?;
    w.parse()
        .map_err(|_| format!("{w:?} is not a valid {what}"))
}

fn sel(w: Option<&&str>) -> Result<PortSel, String> {
    match w.copied() {
        Some("all") => Ok(PortSel::All),
        Some(n) => n
            .parse()
            .map(PortSel::One)
            .map_err(|_| format!("{n:?} is not a port id (a number or all)")),
        None => Err("missing port: give a port id or all".into()),
    }
}

/// Parses a line whose first word is `port` or `dump_mempool` (`words`:
/// all of its words).
pub fn parse(words: &[&str]) -> Result<PortCommand, String> {
    let c = match words {
        ["dump_mempool", ..] => (PortCommand::DumpMempool, 1),
        ["port", "stop", rest @ ..] => (PortCommand::Stop(sel(rest.first())?), 3),
        ["port", "start", rest @ ..] => (PortCommand::Start(sel(rest.first())?), 3),
        ["port", "close", rest @ ..] => (PortCommand::Close(sel(rest.first())?), 3),
        ["port", "config", "mtu", rest @ ..] => (
            PortCommand::ConfigMtu {
                port: number(rest.first(), "port id")?,
                mtu: number(rest.get(1), "MTU")?,
            },
            5,
        ),
        ["port", "config", "all", what, rest @ ..] => {
            let p = match *what {
                "rxq" => QueueParam::Rxq,
                "txq" => QueueParam::Txq,
                "rxd" => QueueParam::Rxd,
                "txd" => QueueParam::Txd,
                x => {
                    return Err(format!(
                        "port config all {x}: expected rxq, txq, rxd or txd"
                    ));
                }
            };
            let n = number(rest.first(), &format!("number of {}", p.name()))?;
            (PortCommand::ConfigAll(p, n), 5)
        }
        ["port", "config", ..] => {
            return Err("port config: expected all rxq|txq|rxd|txd N or mtu N V".into());
        }
        _ => return Err("port: expected stop, start, close or config".into()),
    };
    match words.get(c.1) {
        None => Ok(c.0),
        Some(w) => Err(format!("unexpected {w:?} at the end of the command")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<PortCommand, String> {
        parse(&line.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn dpdk_spellings_parse() {
        assert_eq!(p("port stop 0"), Ok(PortCommand::Stop(PortSel::One(0))));
        assert_eq!(p("port start all"), Ok(PortCommand::Start(PortSel::All)));
        assert_eq!(p("port close 1"), Ok(PortCommand::Close(PortSel::One(1))));
        assert_eq!(
            p("port config all rxd 256"),
            Ok(PortCommand::ConfigAll(QueueParam::Rxd, 256))
        );
        assert_eq!(
            p("port config all rxq 2"),
            Ok(PortCommand::ConfigAll(QueueParam::Rxq, 2))
        );
        assert_eq!(
            p("port config mtu 0 9000"),
            Ok(PortCommand::ConfigMtu { port: 0, mtu: 9000 })
        );
        assert_eq!(p("dump_mempool"), Ok(PortCommand::DumpMempool));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (line, needle) in [
            ("port", "expected stop"),
            ("port stop", "missing port"),
            ("port stop x", "not a port id"),
            ("port config all rxd", "missing number of rxd"),
            ("port config all rxd many", "not a valid number of rxd"),
            ("port config all foo 2", "expected rxq"),
            ("port config mtu 0", "missing MTU"),
            ("port config mtu 0 99999", "not a valid MTU"),
            ("port config speed 0", "expected all"),
            ("port start 0 now", "unexpected \"now\""),
            ("dump_mempool x", "unexpected \"x\""),
        ] {
            let e = p(line).unwrap_err();
            assert!(e.contains(needle), "{line:?}: {e:?}");
        }
    }
}
