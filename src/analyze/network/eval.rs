//! NSG rule evaluation as Azure does it: per direction, the rules sorted by
//! priority together with Azure's six default rules, first match wins.
//!
//! Matching is three-valued. A rule either covers a flow (`Yes`), does not
//! (`No`), or cannot be decided from what is known (`Maybe`: a CIDR compared
//! with the `VirtualNetwork` tag when the address space is unknown, a service
//! tag compared with a bare public IP, an unresolved template expression).
//! The first `Yes` decides; `Maybe` rules before it are reported in
//! [`Verdict::uncertain`] so callers can refuse to conclude from a verdict
//! that might be wrong. Pure: no I/O, no DNS.

use crate::model::network::{Flow, Protocol, Verdict};
use crate::model::{Access, Direction, Nsg, SecurityRule};

/// What is known about the network around an NSG, to resolve tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetContext {
    /// Address space behind the `VirtualNetwork` tag (VNet, peerings). When
    /// empty, a private address (RFC 1918, 100.64/10, fc00::/7) counts as
    /// inside, and a private CIDR rule against the tag itself is `Maybe`.
    pub vnet_prefixes: Vec<Cidr>,
    /// The region, normalised (`westus`), to compare regional tags.
    pub region: Option<String>,
}

impl NetContext {
    pub fn with_region(region: Option<&str>) -> NetContext {
        NetContext {
            vnet_prefixes: Vec::new(),
            region: region.map(normalise_region),
        }
    }
}

/// `West US` → `westus`.
pub fn normalise_region(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Three-valued match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    Yes,
    Maybe,
    No,
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Maybe,
        }
    }
    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Maybe,
        }
    }
}

/// An IPv4 or IPv6 prefix (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    v6: bool,
    addr: u128,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len.trim().parse::<u8>().ok()?)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = ip.trim().trim_matches(['[', ']']).parse().ok()?;
        let (v6, addr, max) = match ip {
            std::net::IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
            std::net::IpAddr::V6(a) => (true, u128::from(a), 128),
        };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(Cidr { v6, addr, len })
    }

    fn mask(&self) -> u128 {
        let (full, bits) = if self.v6 {
            (u128::MAX, 128u32)
        } else {
            (u128::from(u32::MAX), 32u32)
        };
        let host = bits - u32::from(self.len);
        u128::MAX.checked_shl(host).unwrap_or(0) & full
    }

    /// `other` lies wholly inside `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.v6 == other.v6
            && other.len >= self.len
            && (other.addr & self.mask()) == (self.addr & self.mask())
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    fn is_everything(&self) -> bool {
        self.len == 0
    }

    /// Wholly inside private or shared address space (what a VNet uses).
    pub fn is_private(&self) -> bool {
        private_ranges().iter().any(|r| r.contains(self))
    }

    /// Wholly outside private, loopback, link-local and reserved space.
    pub fn is_public(&self) -> bool {
        !self.is_everything() && !non_public_ranges().iter().any(|r| r.overlaps(self))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", std::net::Ipv6Addr::from(self.addr), self.len)
        } else {
            let a = u32::try_from(self.addr).unwrap_or(0);
            write!(f, "{}/{}", std::net::Ipv4Addr::from(a), self.len)
        }
    }
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().filter_map(|s| Cidr::parse(s)).collect()
}

fn private_ranges() -> Vec<Cidr> {
    cidrs(&[
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    ])
}

fn non_public_ranges() -> Vec<Cidr> {
    cidrs(&[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ])
}

/// The wire address of the `AzureLoadBalancer` tag (the host node's probe).
const AZURE_LB_IP: &str = "168.63.129.16/32";

/// A parsed address prefix of a rule or a flow endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Any,
    Cidr(Cidr),
    Tag {
        base: String,
        region: Option<String>,
    },
    /// A template expression or something unreadable.
    Unknown,
}

impl Endpoint {
    fn parse(s: &str) -> Endpoint {
        let s = s.trim();
        if s == "*" || s.eq_ignore_ascii_case("any") {
            return Endpoint::Any;
        }
        if let Some(c) = Cidr::parse(s) {
            return if c.is_everything() {
                Endpoint::Any
            } else {
                Endpoint::Cidr(c)
            };
        }
        let tag_like = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
        if !tag_like {
            return Endpoint::Unknown;
        }
        let lower = s.to_ascii_lowercase();
        match lower.split_once('.') {
            Some((base, region)) => Endpoint::Tag {
                base: base.to_string(),
                region: Some(normalise_region(region)),
            },
            None => Endpoint::Tag {
                base: lower,
                region: None,
            },
        }
    }
}

const VNET: &str = "virtualnetwork";
const INTERNET: &str = "internet";
const LB: &str = "azureloadbalancer";
const AZURE_CLOUD: &str = "azurecloud";

/// Tags whose addresses are not public Azure service ranges.
fn is_local_tag(base: &str) -> bool {
    base == VNET || base == LB || base == INTERNET
}

/// Does the rule prefix `rule` cover the flow endpoint `flow`?
fn prefix_covers(rule: &Endpoint, flow: &Endpoint, ctx: &NetContext) -> Tri {
    match (rule, flow) {
        (Endpoint::Any, _) => Tri::Yes,
        (Endpoint::Unknown, _) | (_, Endpoint::Unknown) => Tri::Maybe,
        (_, Endpoint::Any) => Tri::Maybe,
        (Endpoint::Cidr(r), Endpoint::Cidr(f)) => {
            if r.contains(f) {
                Tri::Yes
            } else if r.overlaps(f) {
                Tri::Maybe
            } else {
                Tri::No
            }
        }
        (Endpoint::Cidr(r), Endpoint::Tag { base, .. }) => cidr_covers_tag(r, base, ctx),
        (Endpoint::Tag { base, region }, Endpoint::Cidr(f)) => {
            tag_covers_cidr(base, region.as_deref(), f, ctx)
        }
        (
            Endpoint::Tag {
                base: rb,
                region: rr,
            },
            Endpoint::Tag {
                base: fb,
                region: fr,
            },
        ) => tag_covers_tag(rb, rr.as_deref(), fb, fr.as_deref(), ctx),
    }
}

fn cidr_covers_tag(r: &Cidr, tag: &str, ctx: &NetContext) -> Tri {
    match tag {
        VNET => {
            if ctx.vnet_prefixes.is_empty() {
                if r.is_private() || !r.is_public() {
                    Tri::Maybe
                } else {
                    Tri::No
                }
            } else if ctx.vnet_prefixes.iter().all(|v| r.contains(v)) {
                Tri::Yes
            } else if ctx.vnet_prefixes.iter().any(|v| r.overlaps(v)) {
                Tri::Maybe
            } else {
                Tri::No
            }
        }
        LB => match Cidr::parse(AZURE_LB_IP) {
            Some(lb) if r.contains(&lb) => Tri::Yes,
            _ => Tri::No,
        },
        // `Internet` as a flow endpoint is an arbitrary public host, which
        // a specific prefix does not cover.
        INTERNET => Tri::No,
        // A service tag is public addresses; a public CIDR may be one of them.
        _ => {
            if r.is_private() {
                Tri::No
            } else {
                Tri::Maybe
            }
        }
    }
}

fn tag_covers_cidr(tag: &str, region: Option<&str>, f: &Cidr, ctx: &NetContext) -> Tri {
    match tag {
        VNET => {
            if ctx.vnet_prefixes.is_empty() {
                // Unknown address space: a private address is taken to be
                // in the VNet or reached through it (peering, gateway).
                if f.is_private() { Tri::Yes } else { Tri::No }
            } else if ctx.vnet_prefixes.iter().any(|v| v.contains(f)) {
                Tri::Yes
            } else if ctx.vnet_prefixes.iter().any(|v| v.overlaps(f)) {
                Tri::Maybe
            } else {
                Tri::No
            }
        }
        INTERNET => {
            let inside_vnet = ctx.vnet_prefixes.iter().any(|v| v.overlaps(f));
            if f.is_public() && !inside_vnet {
                Tri::Yes
            } else if f.is_private() || inside_vnet {
                Tri::No
            } else {
                Tri::Maybe
            }
        }
        LB => match Cidr::parse(AZURE_LB_IP) {
            Some(lb) if lb.contains(f) => Tri::Yes,
            _ => Tri::No,
        },
        _ => {
            let _ = region;
            if f.is_public() { Tri::Maybe } else { Tri::No }
        }
    }
}

fn tag_covers_tag(rb: &str, rr: Option<&str>, fb: &str, fr: Option<&str>, ctx: &NetContext) -> Tri {
    if rb == fb {
        return match (rr, fr) {
            (None, _) => Tri::Yes,
            (Some(r), Some(f)) if r == f => Tri::Yes,
            (Some(_), Some(_)) => Tri::No,
            // A regional rule (`Storage.WestUS`) against the plain tag: the
            // gateway's own region is what it needs; another region is not.
            (Some(r), None) => match &ctx.region {
                Some(own) if own != r => Tri::No,
                _ => Tri::Yes,
            },
        };
    }
    match rb {
        // Internet covers every public Azure service tag, not the VNet or
        // the platform load balancer.
        INTERNET => {
            if is_local_tag(fb) {
                Tri::No
            } else {
                Tri::Yes
            }
        }
        AZURE_CLOUD if rr.is_none() => {
            if is_local_tag(fb) {
                Tri::No
            } else {
                Tri::Yes
            }
        }
        AZURE_CLOUD => {
            if is_local_tag(fb) {
                Tri::No
            } else {
                Tri::Maybe
            }
        }
        // A specific tag never covers "an Internet host" or "an Azure host"
        // in general, nor another service's tag.
        _ => Tri::No,
    }
}

fn prefixes_cover(rule: &[String], flow: &Endpoint, ctx: &NetContext) -> Tri {
    if rule.is_empty() {
        return Tri::Yes;
    }
    rule.iter().fold(Tri::No, |acc, p| {
        acc.or(prefix_covers(&Endpoint::parse(p), flow, ctx))
    })
}

/// A port range of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    /// `*`, `443`, `6381-6383`.
    pub(crate) fn parse(s: &str) -> Option<PortRange> {
        let s = s.trim();
        if s == "*" || s.eq_ignore_ascii_case("any") {
            return Some(PortRange { lo: 0, hi: 65535 });
        }
        match s.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                (lo <= hi).then_some(PortRange { lo, hi })
            }
            None => {
                let p = s.parse().ok()?;
                Some(PortRange { lo: p, hi: p })
            }
        }
    }
}

/// Splits comma-separated lists some sources write in one string.
pub(crate) fn port_ranges(list: &[String]) -> (Vec<PortRange>, bool) {
    let mut out = Vec::new();
    let mut unreadable = false;
    for item in list.iter().flat_map(|s| s.split(',')) {
        match PortRange::parse(item) {
            Some(r) => out.push(r),
            None => unreadable = true,
        }
    }
    if list.is_empty() {
        out.push(PortRange { lo: 0, hi: 65535 });
    }
    (out, unreadable)
}

fn ports_cover(list: &[String], port: u16) -> Tri {
    let (ranges, unreadable) = port_ranges(list);
    if ranges.iter().any(|r| r.lo <= port && port <= r.hi) {
        Tri::Yes
    } else if unreadable {
        Tri::Maybe
    } else {
        Tri::No
    }
}

/// A flow has no known source port: it comes from an ephemeral port. A rule
/// restricted to some source ports covers it only if it spans them all.
fn source_ports_cover(list: &[String]) -> Tri {
    let (ranges, unreadable) = port_ranges(list);
    if ranges.iter().any(|r| r.lo <= 1024 && r.hi == 65535) {
        Tri::Yes
    } else if ranges.is_empty() && !unreadable {
        Tri::No
    } else {
        Tri::Maybe
    }
}

fn protocol_covers(rule: &str, flow: Protocol) -> Tri {
    match (Protocol::parse(rule), flow) {
        (Some(Protocol::Any), _) => Tri::Yes,
        (None, _) | (Some(_), Protocol::Any) => Tri::Maybe,
        (Some(r), f) if r == f => Tri::Yes,
        _ => Tri::No,
    }
}

/// Whether `rule` covers `flow` (direction included).
pub fn rule_covers(rule: &SecurityRule, flow: &Flow, ctx: &NetContext) -> Tri {
    if rule.direction != flow.direction {
        return Tri::No;
    }
    let proto = protocol_covers(&rule.protocol, flow.protocol);
    let port = if flow.protocol == Protocol::Icmp {
        Tri::Yes
    } else {
        ports_cover(&rule.destination_ports, flow.port)
    };
    let src = prefixes_cover(&rule.source_prefixes, &Endpoint::parse(&flow.source), ctx);
    let dst = prefixes_cover(
        &rule.destination_prefixes,
        &Endpoint::parse(&flow.destination),
        ctx,
    );
    proto
        .and(port)
        .and(src)
        .and(dst)
        .and(source_ports_cover(&rule.source_ports))
}

/// Whether every flow `inner` covers is covered by `outer` too (same
/// direction): protocol, ports and every prefix. `Yes` only when certain.
pub fn rule_contains(outer: &SecurityRule, inner: &SecurityRule, ctx: &NetContext) -> Tri {
    if outer.direction != inner.direction {
        return Tri::No;
    }
    let proto = match (
        Protocol::parse(&outer.protocol),
        Protocol::parse(&inner.protocol),
    ) {
        (Some(Protocol::Any), _) => Tri::Yes,
        (Some(o), Some(i)) if o == i => Tri::Yes,
        (Some(_), Some(_)) => Tri::No,
        _ => Tri::Maybe,
    };
    let ports = |o: &[String], i: &[String]| {
        let (or, ou) = port_ranges(o);
        let (ir, iu) = port_ranges(i);
        if ou || iu {
            return Tri::Maybe;
        }
        if ir
            .iter()
            .all(|x| or.iter().any(|y| y.lo <= x.lo && x.hi <= y.hi))
        {
            Tri::Yes
        } else {
            Tri::No
        }
    };
    let prefixes = |o: &[String], i: &[String]| {
        if i.is_empty() {
            return prefixes_cover(o, &Endpoint::Any, ctx);
        }
        i.iter().fold(Tri::Yes, |acc, p| {
            acc.and(prefixes_cover(o, &Endpoint::parse(p), ctx))
        })
    };
    proto
        .and(ports(&outer.destination_ports, &inner.destination_ports))
        .and(ports(&outer.source_ports, &inner.source_ports))
        .and(prefixes(&outer.source_prefixes, &inner.source_prefixes))
        .and(prefixes(
            &outer.destination_prefixes,
            &inner.destination_prefixes,
        ))
}

fn builtin(
    name: &str,
    priority: u32,
    direction: Direction,
    access: Access,
    src: &str,
    dst: &str,
) -> SecurityRule {
    SecurityRule {
        name: name.to_string(),
        priority,
        direction,
        access,
        protocol: "*".to_string(),
        source_prefixes: vec![src.to_string()],
        source_ports: vec!["*".to_string()],
        destination_prefixes: vec![dst.to_string()],
        destination_ports: vec!["*".to_string()],
        description: None,
        default: true,
    }
}

/// Azure's six default rules, present in every NSG.
pub fn azure_default_rules() -> Vec<SecurityRule> {
    use Access::{Allow, Deny};
    use Direction::{Inbound, Outbound};
    vec![
        builtin(
            "AllowVnetInBound",
            65000,
            Inbound,
            Allow,
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        builtin(
            "AllowAzureLoadBalancerInBound",
            65001,
            Inbound,
            Allow,
            "AzureLoadBalancer",
            "*",
        ),
        builtin("DenyAllInBound", 65500, Inbound, Deny, "*", "*"),
        builtin(
            "AllowVnetOutBound",
            65000,
            Outbound,
            Allow,
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        builtin(
            "AllowInternetOutBound",
            65001,
            Outbound,
            Allow,
            "*",
            "Internet",
        ),
        builtin("DenyAllOutBound", 65500, Outbound, Deny, "*", "*"),
    ]
}

/// A rule name without the `securityRules/` or `defaultSecurityRules/`
/// prefix effective-rule listings add.
pub fn short_rule_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Every rule of the NSG in one direction, in evaluation order: custom and
/// default rules by priority (ties keep source order). Default rules the
/// source did not give are added: Azure always has all six.
pub fn ordered_rules(nsg: &Nsg, direction: Direction) -> Vec<SecurityRule> {
    let mut rules: Vec<SecurityRule> = nsg
        .rules
        .iter()
        .chain(nsg.default_rules.iter())
        .filter(|r| r.direction == direction)
        .cloned()
        .collect();
    for d in azure_default_rules() {
        let present = nsg
            .default_rules
            .iter()
            .chain(nsg.rules.iter().filter(|r| r.default))
            .any(|r| short_rule_name(&r.name).eq_ignore_ascii_case(&d.name));
        if d.direction == direction && !present {
            rules.push(d);
        }
    }
    rules.sort_by_key(|r| r.priority);
    rules
}

/// Decides a flow with no knowledge of the address space.
pub fn evaluate(nsg: &Nsg, flow: &Flow) -> Verdict {
    evaluate_in(nsg, flow, &NetContext::default())
}

/// Decides a flow: the first rule by priority that covers it wins.
pub fn evaluate_in(nsg: &Nsg, flow: &Flow, ctx: &NetContext) -> Verdict {
    let mut uncertain = Vec::new();
    let mut uncertain_access = Vec::new();
    for rule in ordered_rules(nsg, flow.direction) {
        match rule_covers(&rule, flow, ctx) {
            Tri::Yes => {
                return Verdict {
                    access: rule.access,
                    rule: short_rule_name(&rule.name).to_string(),
                    priority: rule.priority,
                    default_rule: rule.default
                        || nsg.default_rules.iter().any(|d| d.name == rule.name),
                    uncertain,
                    uncertain_access,
                };
            }
            Tri::Maybe => {
                uncertain.push(format!(
                    "{} (priority {}, {})",
                    short_rule_name(&rule.name),
                    rule.priority,
                    match rule.access {
                        Access::Allow => "allow",
                        Access::Deny => "deny",
                    }
                ));
                uncertain_access.push(rule.access);
            }
            Tri::No => {}
        }
    }
    Verdict {
        access: Access::Deny,
        rule: "(no rule matched)".to_string(),
        priority: u32::MAX,
        default_rule: true,
        uncertain,
        uncertain_access,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A custom rule from compact arguments (ports and prefixes `,`-split).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rule(
        name: &str,
        priority: u32,
        direction: Direction,
        access: Access,
        protocol: &str,
        src: &str,
        dst: &str,
        ports: &str,
    ) -> SecurityRule {
        let split = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        SecurityRule {
            name: name.to_string(),
            priority,
            direction,
            access,
            protocol: protocol.to_string(),
            source_prefixes: split(src),
            source_ports: vec!["*".to_string()],
            destination_prefixes: split(dst),
            destination_ports: split(ports),
            description: None,
            default: false,
        }
    }

    fn nsg(rules: Vec<SecurityRule>) -> Nsg {
        Nsg {
            name: "nsg".into(),
            rules,
            ..Nsg::default()
        }
    }

    use Access::{Allow, Deny};
    use Direction::{Inbound, Outbound};

    #[test]
    fn defaults_apply_when_nsg_gives_none() {
        let n = nsg(vec![]);
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 443));
        assert_eq!((v.access, v.rule.as_str()), (Deny, "DenyAllInBound"));
        assert!(v.default_rule && v.certain());
        let v = evaluate(
            &n,
            &Flow::new(Inbound, "VirtualNetwork", "VirtualNetwork", 22),
        );
        assert_eq!((v.access, v.priority), (Allow, 65000));
        let v = evaluate(
            &n,
            &Flow::new(Inbound, "AzureLoadBalancer", "VirtualNetwork", 6390),
        );
        assert_eq!(v.rule, "AllowAzureLoadBalancerInBound");
        let v = evaluate(&n, &Flow::new(Outbound, "VirtualNetwork", "Storage", 443));
        assert_eq!(v.rule, "AllowInternetOutBound");
        let v = evaluate(&n, &Flow::new(Outbound, "VirtualNetwork", "10.1.0.4", 443));
        assert_eq!((v.access, v.rule.as_str()), (Allow, "AllowVnetOutBound"));
        let v = evaluate(&n, &Flow::new(Outbound, "VirtualNetwork", "20.1.0.4", 443));
        assert_eq!(
            (v.access, v.rule.as_str()),
            (Allow, "AllowInternetOutBound")
        );
    }

    #[test]
    fn first_match_by_priority_not_array_order() {
        let n = nsg(vec![
            rule("allow", 200, Inbound, Allow, "Tcp", "*", "*", "443"),
            rule("deny", 100, Inbound, Deny, "*", "Internet", "*", "*"),
        ]);
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 443));
        assert_eq!((v.access, v.rule.as_str(), v.priority), (Deny, "deny", 100));
        let v = evaluate(&n, &Flow::new(Inbound, "10.0.0.1", "VirtualNetwork", 443));
        assert_eq!((v.access, v.rule.as_str()), (Allow, "allow"));
    }

    #[test]
    fn ports_protocols_and_lists() {
        let n = nsg(vec![
            rule("redis", 100, Inbound, Allow, "tcp", "*", "*", "6381-6383"),
            rule("list", 110, Inbound, Allow, "UDP", "*", "*", "53,123"),
        ]);
        let f = |p, proto| Flow::new(Inbound, "Internet", "VirtualNetwork", p).protocol(proto);
        assert_eq!(evaluate(&n, &f(6382, Protocol::Tcp)).rule, "redis");
        assert_eq!(evaluate(&n, &f(6384, Protocol::Tcp)).rule, "DenyAllInBound");
        assert_eq!(evaluate(&n, &f(6382, Protocol::Udp)).rule, "DenyAllInBound");
        assert_eq!(evaluate(&n, &f(123, Protocol::Udp)).rule, "list");
        assert_eq!(evaluate(&n, &f(123, Protocol::Tcp)).rule, "DenyAllInBound");
    }

    #[test]
    fn cidr_containment_v4_and_v6() {
        let n = nsg(vec![
            rule("v4", 100, Outbound, Deny, "*", "*", "10.1.0.0/16", "*"),
            rule("v6", 110, Outbound, Deny, "*", "*", "2001:db8::/32", "*"),
        ]);
        let out = |d: &str| Flow::new(Outbound, "10.0.0.4", d, 443);
        assert_eq!(evaluate(&n, &out("10.1.2.3")).rule, "v4");
        assert_eq!(evaluate(&n, &out("10.1.2.0/24")).rule, "v4");
        assert_eq!(evaluate(&n, &out("2001:db8::1")).rule, "v6");
        assert_ne!(evaluate(&n, &out("10.2.0.1")).rule, "v4");
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("[parameters('x')]").is_none());
        assert!(Cidr::parse("20.1.2.3").unwrap().is_public());
        assert!(!Cidr::parse("10.1.2.3").unwrap().is_public());
    }

    #[test]
    fn service_tags_case_and_region() {
        let n = nsg(vec![
            rule(
                "sql",
                100,
                Outbound,
                Allow,
                "Tcp",
                "VirtualNetwork",
                "SQL",
                "1433",
            ),
            rule(
                "st",
                110,
                Outbound,
                Allow,
                "Tcp",
                "VirtualNetwork",
                "Storage.WestUS",
                "443",
            ),
            rule("deny", 120, Outbound, Deny, "*", "*", "Internet", "*"),
        ]);
        let out = |d: &str, p| Flow::new(Outbound, "VirtualNetwork", d, p);
        assert_eq!(evaluate(&n, &out("Sql", 1433)).rule, "sql");
        assert_eq!(evaluate(&n, &out("Storage", 443)).rule, "st");
        assert_eq!(evaluate(&n, &out("storage.westus", 443)).rule, "st");
        assert_eq!(evaluate(&n, &out("Storage.EastUS", 443)).rule, "deny");
        let west = NetContext::with_region(Some("West US"));
        let east = NetContext::with_region(Some("East US"));
        assert_eq!(evaluate_in(&n, &out("Storage", 443), &west).rule, "st");
        assert_eq!(evaluate_in(&n, &out("Storage", 443), &east).rule, "deny");
        // Internet covers public addresses and Azure service tags.
        assert_eq!(evaluate(&n, &out("AzureMonitor", 443)).rule, "deny");
        assert_eq!(evaluate(&n, &out("52.1.2.3", 80)).rule, "deny");
        assert_eq!(evaluate(&n, &out("Internet", 80)).rule, "deny");
        assert_eq!(
            evaluate(&n, &out("VirtualNetwork", 80)).rule,
            "AllowVnetOutBound"
        );
    }

    #[test]
    fn virtual_network_uses_known_address_space() {
        let n = nsg(vec![rule(
            "subnet",
            100,
            Inbound,
            Allow,
            "Tcp",
            "Internet",
            "10.0.0.0/24",
            "443",
        )]);
        let f = Flow::new(Inbound, "Internet", "VirtualNetwork", 443);
        let v = evaluate(&n, &f);
        assert_eq!(v.rule, "DenyAllInBound");
        assert!(!v.certain(), "a subnet CIDR may be the VNet: {v:?}");
        let ctx = NetContext {
            vnet_prefixes: vec![Cidr::parse("10.0.0.0/24").unwrap()],
            region: None,
        };
        let v = evaluate_in(&n, &f, &ctx);
        assert_eq!((v.rule.as_str(), v.certain()), ("subnet", true));
        let wide = NetContext {
            vnet_prefixes: vec![Cidr::parse("10.9.0.0/16").unwrap()],
            region: None,
        };
        let v = evaluate_in(&n, &f, &wide);
        assert_eq!((v.rule.as_str(), v.certain()), ("DenyAllInBound", true));
    }

    #[test]
    fn given_defaults_and_effective_names() {
        let mut n = nsg(vec![]);
        n.default_rules = vec![SecurityRule {
            default: true,
            ..rule(
                "defaultSecurityRules/DenyAllInBound",
                65500,
                Inbound,
                Deny,
                "All",
                "0.0.0.0/0",
                "0.0.0.0/0",
                "0-65535",
            )
        }];
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 443));
        assert_eq!((v.rule.as_str(), v.default_rule), ("DenyAllInBound", true));
        // The missing AllowVnetInBound is still there.
        let v = evaluate(
            &n,
            &Flow::new(Inbound, "VirtualNetwork", "VirtualNetwork", 443),
        );
        assert_eq!(v.rule, "AllowVnetInBound");
    }

    #[test]
    fn template_expressions_are_uncertain_not_errors() {
        let n = nsg(vec![rule(
            "expr",
            100,
            Inbound,
            Allow,
            "Tcp",
            "[parameters('src')]",
            "*",
            "[parameters('port')]",
        )]);
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 443));
        assert_eq!(v.rule, "DenyAllInBound");
        assert_eq!(v.uncertain.len(), 1);
        assert!(!v.certain());
    }

    #[test]
    fn containment_between_rules() {
        let ctx = NetContext::default();
        let deny = rule("d", 100, Outbound, Deny, "*", "*", "Internet", "*");
        let allow = rule(
            "a",
            200,
            Outbound,
            Allow,
            "Tcp",
            "VirtualNetwork",
            "Storage",
            "443",
        );
        assert_eq!(rule_contains(&deny, &allow, &ctx), Tri::Yes);
        let narrow = rule("n", 100, Outbound, Deny, "Tcp", "*", "Storage", "445");
        assert_eq!(rule_contains(&narrow, &allow, &ctx), Tri::No);
        let any = rule("x", 100, Outbound, Deny, "*", "*", "*", "*");
        assert_eq!(rule_contains(&any, &allow, &ctx), Tri::Yes);
    }
}
