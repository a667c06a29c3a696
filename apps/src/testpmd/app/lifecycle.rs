//! The program side of the port lifecycle commands ([`super::super::portcmd`]):
//! DPDK testpmd's `port stop|start|close`, `port config`, with its
//! messages. A port's queues live in the idle streams while forwarding is
//! stopped: `port stop` and `port close` give them back (drop them) before
//! stopping the port, `port start` takes the new ones and deals them into
//! the streams again.

use super::super::cli::PortSel;
use super::super::portcmd::{PortCommand, QueueParam};
use super::App;
use std::collections::HashMap;

/// DPDK's `Port N: XX:XX:...` line (upper-case hex).
fn mac_upper(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl App {
    /// True when every port is started (forwarding needs them all).
    pub(super) fn all_ports_started(&self) -> bool {
        self.ports.iter().all(|p| !p.closed && p.port.is_started())
    }

    fn all_ports_stopped(&self) -> bool {
        self.ports.iter().all(|p| p.closed || !p.port.is_started())
    }

    /// Drops port `i`'s queues out of the idle streams (they are disabled
    /// and give their buffers back as the DMA rule allows).
    fn give_back_queues(&mut self, i: usize) {
        for w in self.idle.iter_mut() {
            for s in w.streams.iter_mut() {
                if s.spec.rx_port == i {
                    s.rx = None;
                }
                if s.spec.tx_port == i {
                    s.tx = None;
                }
            }
        }
    }

    /// Takes every queue of started port `i` and deals them into the
    /// streams with the others.
    fn take_queues(&mut self, i: usize) -> Result<(), String> {
        let mut rxq = HashMap::new();
        let mut txq = HashMap::new();
        let p = &self.ports[i].port;
        for q in 0..p.rx_queue_count() {
            rxq.insert((i, q), p.take_rx_queue(q).map_err(|e| e.to_string())?);
        }
        for q in 0..p.tx_queue_count() {
            txq.insert((i, q), p.take_tx_queue(q).map_err(|e| e.to_string())?);
        }
        self.rearrange_with(rxq, txq);
        Ok(())
    }

    /// The links of `ids`: waited for (up to `--link-timeout`) after a
    /// start, read once after a stop (the stop powers the PHY down).
    fn check_links(&self, ids: &[usize], wait: bool) {
        let h = self.human();
        h.say("Checking link statuses...");
        let deadline = std::time::Instant::now() + self.cfg.link_timeout;
        for &i in ids {
            let p = &self.ports[i].port;
            let l = if wait {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                p.wait_for_link(left).unwrap_or_else(|_| p.link())
            } else {
                p.link()
            };
            h.say(&format!("Port {i}: link {l}"));
        }
    }

    /// Runs one port lifecycle command.
    pub(super) fn port_command(&mut self, c: PortCommand) -> Result<(), String> {
        let h = self.human();
        let n = self.ports.len();
        let forwarding = self.running.is_some();
        match c {
            PortCommand::Stop(sel) => {
                let ids = sel.ports(n)?;
                h.say("Stopping ports...");
                let mut stopped = Vec::new();
                for i in ids {
                    if forwarding {
                        h.say(&format!(
                            "Please remove port {i} from forwarding configuration."
                        ));
                        continue;
                    }
                    if self.ports[i].closed || !self.ports[i].port.is_started() {
                        continue;
                    }
                    self.give_back_queues(i);
                    self.ports[i].port.stop();
                    stopped.push(i);
                }
                if !stopped.is_empty() {
                    self.check_links(&stopped, false);
                }
                h.say("Done");
            }
            PortCommand::Start(sel) => {
                let ids = sel.ports(n)?;
                let mut started = Vec::new();
                for i in ids {
                    if self.ports[i].closed || self.ports[i].port.is_started() {
                        h.say(&format!("Port {i} is now not stopped"));
                        continue;
                    }
                    if std::mem::take(&mut self.ports[i].reconfigured) {
                        h.say(&format!("Configuring Port {i} (socket 0)"));
                    }
                    if let Err(e) = self.ports[i].port.start() {
                        h.say(&format!("Fail to start port {i}: {e}"));
                        continue;
                    }
                    self.take_queues(i)?;
                    h.say(&format!("Port {i}: {}", mac_upper(self.ports[i].mac)));
                    started.push(i);
                }
                if started.is_empty() {
                    h.say("Please stop the ports first");
                } else {
                    self.check_links(&started, true);
                }
                h.say("Done");
            }
            PortCommand::Close(sel) => {
                let ids = sel.ports(n)?;
                h.say("Closing ports...");
                for i in ids {
                    if forwarding {
                        h.say(&format!(
                            "Please remove port {i} from forwarding configuration."
                        ));
                        continue;
                    }
                    if self.ports[i].closed {
                        h.say(&format!("Port {i} is already closed"));
                        continue;
                    }
                    self.give_back_queues(i);
                    // Stopped and quiesced here; the VFIO device is
                    // released at exit.
                    self.ports[i].port.close_in_place();
                    self.ports[i].closed = true;
                    h.say(&format!("Port {i} is closed"));
                }
                h.say("Done");
            }
            PortCommand::ConfigAll(what, v) => {
                if !self.all_ports_stopped() {
                    h.say("Please stop all ports first");
                    return Ok(());
                }
                // All ports or none: a port that refuses puts the ones
                // already changed back.
                let mut done: Vec<(usize, pmd::PortConfig)> = Vec::new();
                for i in (0..n).filter(|&i| !self.ports[i].closed) {
                    let p = &self.ports[i].port;
                    let old = p.config();
                    let mut c = old.clone();
                    match what {
                        QueueParam::Rxq => c.rx_queues = v,
                        QueueParam::Txq => c.tx_queues = v,
                        QueueParam::Rxd => c.rx_desc = v,
                        QueueParam::Txd => c.tx_desc = v,
                    }
                    if let Err(e) = p.reconfigure(&c) {
                        for (j, old) in done {
                            if let Err(e) = self.ports[j].port.reconfigure(&old) {
                                h.say(&format!("port {j}: cannot restore its configuration: {e}"));
                            }
                        }
                        return Err(format!("port {i}: {e}"));
                    }
                    done.push((i, old));
                }
                for (i, _) in done {
                    self.ports[i].reconfigured = true;
                }
                match what {
                    QueueParam::Rxq => self.cfg.rxq = v,
                    QueueParam::Txq => self.cfg.txq = v,
                    QueueParam::Rxd => self.cfg.rxd = v,
                    QueueParam::Txd => self.cfg.txd = v,
                }
            }
            PortCommand::ConfigMtu { port, mtu } => {
                PortSel::One(port).ports(n)?;
                self.ports[port]
                    .port
                    .set_mtu(mtu)
                    .map_err(|e| format!("Set MTU failed: {e}"))?;
            }
            PortCommand::DumpMempool => {
                h.say(&format!(
                    "mempool <{}>: {} of {} mbufs in use, {} available",
                    self.pool.name(),
                    self.pool.in_use(),
                    self.cfg.total_num_mbufs,
                    self.cfg.total_num_mbufs.saturating_sub(self.pool.in_use())
                ));
            }
        }
        Ok(())
    }
}
