//! A flow through a network security group and the verdict on it: the
//! vocabulary `analyze::network` decides with and the net check's renderers
//! and tools print. Not glob-exported from `model` (`Verdict` there is the
//! diagnosis's); name it `model::network::Verdict`.

use super::{Access, Direction};
use serde::Serialize;

/// The transport protocol of a flow (or a rule's, where `Any` is `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Any,
    Tcp,
    Udp,
    Icmp,
}

impl Protocol {
    /// Reads `*`, `Any`, `All` (effective rules), `Tcp`, `Udp`, `Icmp`,
    /// case-insensitively.
    pub fn parse(s: &str) -> Option<Protocol> {
        let s = s.trim();
        if s == "*" || s.eq_ignore_ascii_case("any") || s.eq_ignore_ascii_case("all") {
            Some(Protocol::Any)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Protocol::Tcp)
        } else if s.eq_ignore_ascii_case("udp") {
            Some(Protocol::Udp)
        } else if s.eq_ignore_ascii_case("icmp") {
            Some(Protocol::Icmp)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Any => "*",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// One flow to decide: who talks to whom, on which port. `source` and
/// `destination` are an IP, a CIDR, a service tag (`Internet`,
/// `VirtualNetwork`, `Storage.WestUS`…) or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub direction: Direction,
    pub source: String,
    pub destination: String,
    pub port: u16,
    pub protocol: Protocol,
}

impl Flow {
    pub fn new(direction: Direction, source: &str, destination: &str, port: u16) -> Flow {
        Flow {
            direction,
            source: source.to_string(),
            destination: destination.to_string(),
            port,
            protocol: Protocol::Tcp,
        }
    }

    pub fn protocol(mut self, p: Protocol) -> Flow {
        self.protocol = p;
        self
    }

    /// `outbound tcp VirtualNetwork -> Internet:80`.
    pub fn describe(&self) -> String {
        let dir = match self.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        format!(
            "{dir} {} {} -> {}:{}",
            self.protocol.as_str(),
            self.source,
            self.destination,
            self.port
        )
    }
}

/// The rule that decided a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    pub access: Access,
    pub rule: String,
    pub priority: u32,
    /// The deciding rule is one of Azure's default rules.
    pub default_rule: bool,
    /// Higher-priority rules whose match could not be decided (`name (priority)`
    /// with the reason). Empty when the verdict is certain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uncertain: Vec<String>,
    /// Access of each uncertain rule, parallel to `uncertain`.
    #[serde(skip)]
    pub uncertain_access: Vec<Access>,
}

impl Verdict {
    /// No rule with the opposite access might have decided first.
    pub fn certain(&self) -> bool {
        !self.uncertain_access.iter().any(|a| *a != self.access)
    }
}
