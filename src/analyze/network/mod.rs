//! Network security group checks for a VNet-injected gateway: the flows API
//! Management needs (formats.md §5, the 2025 table; stv1 differences where
//! `platformVersion` says so), gateway → backend flows, allow rules shadowed
//! by a higher-priority deny, and the management port open to the Internet.
//!
//! Conservative by design: a flow is reported denied only when no rule that
//! might allow it comes first (see `eval`'s three-valued matching), and the
//! APIM table is applied only to NSGs tied to the gateway's subnet (or that
//! clearly protect an APIM subnet when no service is loaded). Pure.

pub mod eval;

pub use crate::model::network::{Flow, Protocol, Verdict};
pub use eval::{
    Cidr, NetContext, Tri, azure_default_rules, evaluate, evaluate_in, ordered_rules,
    rule_contains, rule_covers,
};

use crate::model::{
    Access, Direction, Evidence, Finding, FindingKind, Location, Nsg, RouteEntry, SecurityRule,
    Service, Severity, Snapshot, Subject, fingerprint_with, url_host,
};

/// Which VNet mode a requirement applies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    External,
    Both,
}

/// Which NSG table a requirement comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    /// Every table (2023 stv1, 2023 stv2, 2025).
    All,
    /// The 2025 table and stv2 only (not stv1).
    NotStv1,
    /// The 2023 stv1 tab only.
    Stv1,
}

/// One required flow of formats.md §5 (bold rows).
struct Requirement {
    direction: Direction,
    /// The side that is not the gateway's subnet.
    peer: &'static str,
    ports: &'static [u16],
    purpose: &'static str,
    mode: Mode,
    table: Table,
    severity: Severity,
    note: &'static str,
    /// The peer stands for "some clients": any explicit allow of the port
    /// from any source satisfies it (a gateway behind Front Door or an
    /// Application Gateway admits only those).
    any_source: bool,
    /// Needed only with additional regions.
    multi_region: bool,
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        direction: Direction::Inbound,
        peer: "Internet",
        ports: &[443],
        purpose: "client traffic",
        mode: Mode::External,
        table: Table::All,
        severity: Severity::High,
        note: "",
        any_source: true,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Inbound,
        peer: "ApiManagement",
        ports: &[3443],
        purpose: "management endpoint for the Azure portal and PowerShell",
        mode: Mode::Both,
        table: Table::All,
        severity: Severity::High,
        note: "",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Inbound,
        peer: "AzureLoadBalancer",
        ports: &[6390],
        purpose: "Azure infrastructure load balancer",
        mode: Mode::Both,
        table: Table::All,
        severity: Severity::High,
        note: "critical once the service is scaled: a failing probe cuts control and data plane",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Inbound,
        peer: "AzureTrafficManager",
        ports: &[443],
        purpose: "multi-region routing",
        mode: Mode::External,
        table: Table::NotStv1,
        severity: Severity::Medium,
        note: "new in the 2025 table; checked only with additional regions",
        any_source: false,
        multi_region: true,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "Internet",
        ports: &[80],
        purpose: "certificate validation and management",
        mode: Mode::Both,
        table: Table::NotStv1,
        severity: Severity::Medium,
        note: "new in the 2025 table; CRL/OCSP hosts such as crl.microsoft.com",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "Storage",
        ports: &[443],
        purpose: "Azure Storage",
        mode: Mode::Both,
        table: Table::All,
        severity: Severity::High,
        note: "",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "Sql",
        ports: &[1433],
        purpose: "Azure SQL",
        mode: Mode::Both,
        table: Table::All,
        severity: Severity::High,
        note: "",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "AzureKeyVault",
        ports: &[443],
        purpose: "Key Vault",
        mode: Mode::Both,
        table: Table::NotStv1,
        severity: Severity::Medium,
        note: "optional on stv1",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "AzureMonitor",
        ports: &[1886, 443],
        purpose: "diagnostic logs, metrics and Resource Health",
        mode: Mode::Both,
        table: Table::All,
        severity: Severity::Medium,
        note: "",
        any_source: false,
        multi_region: false,
    },
    Requirement {
        direction: Direction::Outbound,
        peer: "AzureCloud",
        ports: &[443],
        purpose: "health and monitoring extension (stv1)",
        mode: Mode::Both,
        table: Table::Stv1,
        severity: Severity::Medium,
        note: "2023 stv1 table",
        any_source: false,
        multi_region: false,
    },
];

/// Check ids, also the fingerprint discriminators.
const REQUIRED_DENIED: &str = "NET001";
const REQUIRED_ON_DEFAULT: &str = "NET002";
const BACKEND_DENIED: &str = "NET003";
const SHADOWED_ALLOW: &str = "NET004";
const MANAGEMENT_OPEN: &str = "NET005";

/// The VNet mode the gateway runs in, as far as the checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VnetMode {
    External,
    Internal,
    /// No service loaded; the NSG looks like an APIM subnet NSG.
    Unknown,
}

/// An NSG the APIM table applies to, with how sure the tie is.
struct ApimNsg<'a> {
    nsg: &'a Nsg,
    confidence: f64,
    why: &'static str,
}

/// What is known about the network from the snapshot.
pub fn net_context(snapshot: &Snapshot) -> NetContext {
    NetContext::with_region(
        snapshot
            .service
            .as_ref()
            .and_then(|s| s.location.as_deref()),
    )
}

fn vnet_mode(service: Option<&Service>) -> Option<VnetMode> {
    let Some(s) = service else {
        return Some(VnetMode::Unknown);
    };
    let sku = s.sku.as_deref().unwrap_or("").to_ascii_lowercase();
    // Premium v2 / Standard v2 integrate differently; Consumption has no VNet.
    if sku.ends_with("v2") || sku == "consumption" {
        return None;
    }
    match s
        .vnet_type
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("external") => Some(VnetMode::External),
        Some("internal") => Some(VnetMode::Internal),
        _ => None,
    }
}

/// An NSG that clearly guards an APIM subnet: it allows the management
/// port from the `ApiManagement` tag, or its name says so.
fn looks_like_apim(nsg: &Nsg) -> bool {
    let tagged = nsg.rules.iter().any(|r| {
        r.direction == Direction::Inbound
            && r.access == Access::Allow
            && r.source_prefixes
                .iter()
                .any(|p| p.trim().eq_ignore_ascii_case("ApiManagement"))
            && eval::port_ranges(&r.destination_ports)
                .0
                .iter()
                .any(|p| p.lo <= 3443 && 3443 <= p.hi)
    });
    tagged || nsg.name.to_ascii_lowercase().contains("apim")
}

fn same_id(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

fn apim_nsgs(snapshot: &Snapshot) -> Vec<ApimNsg<'_>> {
    let subnet = snapshot
        .service
        .as_ref()
        .and_then(|s| s.subnet_id.as_deref());
    if let Some(subnet) = subnet {
        let tied: Vec<ApimNsg<'_>> = snapshot
            .nsgs
            .iter()
            .filter(|n| n.subnets.iter().any(|s| same_id(s, subnet)))
            .map(|nsg| ApimNsg {
                nsg,
                confidence: 0.95,
                why: "associated with the gateway's subnet",
            })
            .collect();
        if !tied.is_empty() {
            return tied;
        }
    }
    let looking: Vec<ApimNsg<'_>> = snapshot
        .nsgs
        .iter()
        .filter(|n| looks_like_apim(n))
        .map(|nsg| ApimNsg {
            nsg,
            confidence: 0.8,
            why: "looks like an API Management subnet NSG",
        })
        .collect();
    if !looking.is_empty() {
        return looking;
    }
    match (&snapshot.service, snapshot.nsgs.as_slice()) {
        (Some(_), [only]) if only.subnets.is_empty() => vec![ApimNsg {
            nsg: only,
            confidence: 0.6,
            why: "the only NSG loaded beside a VNet-injected service",
        }],
        _ => Vec::new(),
    }
}

/// The gateway's side of a flow: its private IP when known (so CIDR rules
/// on the subnet can be decided), else the `VirtualNetwork` tag.
fn gateway_endpoint(service: Option<&Service>) -> String {
    service
        .and_then(|s| s.private_ips.iter().find(|ip| Cidr::parse(ip).is_some()))
        .cloned()
        .unwrap_or_else(|| "VirtualNetwork".to_string())
}

fn requirement_flow(req: &Requirement, gateway: &str, port: u16) -> Flow {
    match req.direction {
        Direction::Inbound => Flow::new(Direction::Inbound, req.peer, gateway, port),
        Direction::Outbound => Flow::new(Direction::Outbound, gateway, req.peer, port),
    }
}

fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
    }
}

/// A free custom priority just above (numerically below) `deny`.
fn suggest_priority(nsg: &Nsg, direction: Direction, deny: u32) -> u32 {
    let taken = |p: u32| {
        nsg.rules
            .iter()
            .any(|r| r.direction == direction && r.priority == p)
    };
    let top = deny.saturating_sub(1).min(4096);
    let round = (100..=top).rev().find(|p| p % 10 == 0 && !taken(*p));
    round
        .or_else(|| (100..=top).rev().find(|p| !taken(*p)))
        .unwrap_or(100)
}

/// An ARM-shaped rule to paste, for the fix hint.
fn rule_excerpt(
    name: &str,
    flow_dir: Direction,
    src: &str,
    dst: &str,
    ports: &[u16],
    prio: u32,
) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let v = serde_json::json!({
        "name": name,
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "sourceAddressPrefix": src,
            "destinationAddressPrefix": dst,
            "destinationPortRanges": ports,
            "access": "Allow",
            "priority": prio,
            "direction": direction_word(flow_dir),
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn nsg_location(nsg: &Nsg) -> Option<Location> {
    (!nsg.origin.file.is_empty()).then(|| Location {
        file: nsg.origin.file.clone(),
        line: nsg.origin.line,
        column: None,
    })
}

fn subject(service: Option<&Service>, nsg: &Nsg, rule: Option<&str>) -> Subject {
    Subject {
        service: service.map(|s| s.name.clone()).filter(|n| !n.is_empty()),
        nsg: Some(nsg.name.clone()),
        rule: rule.map(str::to_string),
        ..Subject::default()
    }
}

fn finish(mut f: Finding, check: &str, extra: &str, nsg: &Nsg) -> Finding {
    f = f.with_rule(check);
    if !extra.is_empty() {
        f.id = fingerprint_with(f.kind, &f.subject, &format!("{check}:{extra}"));
    }
    match nsg_location(nsg) {
        Some(l) => f.location(l),
        None => f,
    }
}

fn is_stv1(service: Option<&Service>) -> bool {
    service
        .and_then(|s| s.platform_version.as_deref())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("stv1"))
}

fn applies(req: &Requirement, mode: VnetMode, stv1: bool, multi_region: bool) -> bool {
    if req.multi_region && !multi_region {
        return false;
    }
    let mode_ok = match req.mode {
        Mode::Both => true,
        Mode::External => mode == VnetMode::External,
    };
    let table_ok = match req.table {
        Table::All => true,
        Table::NotStv1 => !stv1,
        Table::Stv1 => stv1,
    };
    mode_ok && table_ok
}

/// Some explicit inbound allow admits the flow's port to the gateway from
/// one of its own sources (and is not overridden for that source).
fn admitted_from_somewhere(nsg: &Nsg, flow: &Flow, ctx: &NetContext) -> bool {
    nsg.rules
        .iter()
        .filter(|r| r.direction == flow.direction && r.access == Access::Allow && !r.default)
        .flat_map(|r| r.source_prefixes.iter())
        .any(|src| {
            let f = Flow {
                source: src.clone(),
                ..flow.clone()
            };
            let v = evaluate_in(nsg, &f, ctx);
            v.access == Access::Allow && !v.default_rule
        })
}

/// (a) required APIM flows that are denied, or lean on a default rule.
fn required_flow_findings(
    service: Option<&Service>,
    target: &ApimNsg<'_>,
    mode: VnetMode,
    ctx: &NetContext,
) -> Vec<Finding> {
    let stv1 = is_stv1(service);
    let gateway = gateway_endpoint(service);
    let nsg = target.nsg;
    let scaled = service.and_then(|s| s.capacity).is_some_and(|c| c > 1);
    let mut out = Vec::new();
    let mut on_default: Vec<String> = Vec::new();
    let multi_region = service.is_some_and(|s| !s.additional_locations.is_empty());
    for req in REQUIREMENTS
        .iter()
        .filter(|r| applies(r, mode, stv1, multi_region))
    {
        let mut denied: Vec<(u16, Verdict)> = Vec::new();
        for &port in req.ports {
            let flow = requirement_flow(req, &gateway, port);
            let v = evaluate_in(nsg, &flow, ctx);
            if req.any_source && admitted_from_somewhere(nsg, &flow, ctx) {
                continue;
            }
            if v.access == Access::Deny && v.certain() {
                denied.push((port, v));
            } else if v.access == Access::Allow
                && v.certain()
                && v.rule.eq_ignore_ascii_case("AllowInternetOutBound")
            {
                on_default.push(format!("{} {}/{}", req.peer, "tcp", port));
            }
        }
        // One finding per deciding rule, ports grouped.
        let mut by_rule: Vec<(String, u32, bool, Vec<u16>)> = Vec::new();
        for (port, v) in denied {
            match by_rule.iter_mut().find(|(r, ..)| *r == v.rule) {
                Some(entry) => entry.3.push(port),
                None => by_rule.push((v.rule.clone(), v.priority, v.default_rule, vec![port])),
            }
        }
        for (rule, priority, default_rule, ports) in by_rule {
            let ports_text: Vec<String> = ports.iter().map(u16::to_string).collect();
            let ports_text = ports_text.join(", ");
            let gateway_label = if gateway == "VirtualNetwork" {
                gateway.clone()
            } else {
                format!("gateway {gateway}")
            };
            let (src, dst) = match req.direction {
                Direction::Inbound => (req.peer, gateway_label.as_str()),
                Direction::Outbound => (gateway_label.as_str(), req.peer),
            };
            let dir = direction_word(req.direction).to_ascii_lowercase();
            let severity = if req.peer == "AzureLoadBalancer" && scaled {
                Severity::Critical
            } else {
                req.severity
            };
            let suggested = suggest_priority(nsg, req.direction, priority);
            let how = if default_rule {
                format!("no rule allows it, so the default {rule} ({priority}) denies it")
            } else {
                format!("denied by {rule} (priority {priority})")
            };
            let summary = format!(
                "NSG {}: required {dir} flow {src} -> {dst} TCP {ports_text} ({}) is {how}",
                nsg.name, req.purpose
            );
            let mut text = format!(
                "API Management in {} VNet mode needs {dir} TCP {ports_text} {} {} for {}",
                match mode {
                    VnetMode::External => "External",
                    VnetMode::Internal => "Internal",
                    VnetMode::Unknown => "any",
                },
                if req.direction == Direction::Inbound {
                    "from"
                } else {
                    "to"
                },
                req.peer,
                req.purpose
            );
            if !req.note.is_empty() {
                text.push_str(&format!(" ({})", req.note));
            }
            text.push_str(&format!("; NSG {} {how}.", nsg.name));
            let (rule_src, rule_dst) = match req.direction {
                Direction::Inbound => (req.peer, "VirtualNetwork"),
                Direction::Outbound => ("VirtualNetwork", req.peer),
            };
            let fix = format!(
                "Add an {} Allow rule {rule_src} -> {rule_dst} TCP {ports_text} at a priority below {priority} (e.g. {suggested}){}.",
                direction_word(req.direction),
                if default_rule {
                    String::new()
                } else {
                    format!(", or narrow {rule}")
                }
            );
            let mut evidence = Evidence::text(text)
                .value("priority", f64::from(priority))
                .value("suggested_priority", f64::from(suggested));
            if let Some(p) = ports.first() {
                evidence = evidence.value("port", f64::from(*p));
            }
            evidence.sources.push(nsg.origin.clone());
            let mut hint = Evidence::text(fix);
            hint.excerpt = Some(rule_excerpt(
                &format!("Allow_{}_{}", req.peer, ports.first().copied().unwrap_or(0)),
                req.direction,
                rule_src,
                rule_dst,
                &ports,
                suggested,
            ));
            let f = Finding::new(
                FindingKind::NetworkGap,
                severity,
                subject(service, nsg, Some(&rule)),
                summary,
            )
            .evidence(evidence)
            .evidence(hint)
            .evidence(Evidence::text(format!("NSG {}: {}.", nsg.name, target.why)))
            .confidence(target.confidence);
            let extra = format!("{dir}:{}:{}", req.peer, ports_text);
            out.push(finish(f, REQUIRED_DENIED, &extra, nsg));
        }
    }
    if !on_default.is_empty() {
        let summary = format!(
            "NSG {}: {} required outbound flow(s) are allowed only by the default rule AllowInternetOutBound",
            nsg.name,
            on_default.len()
        );
        let text = format!(
            "Allowed only by AllowInternetOutBound (65001): {}. They work today, but any custom deny of Internet outbound cuts them; the API Management docs list explicit rules for each.",
            on_default.join(", ")
        );
        let f = Finding::new(
            FindingKind::NetworkGap,
            Severity::Info,
            subject(service, nsg, Some("AllowInternetOutBound")),
            summary,
        )
        .evidence(Evidence::text(text).value("flows", on_default.len() as f64))
        .confidence(target.confidence);
        out.push(finish(f, REQUIRED_ON_DEFAULT, "", nsg));
    }
    out
}

/// The IP literal and port of a backend URL, if the host is an IP.
fn url_ip_port(url: &str) -> Option<(String, u16)> {
    let host = url_host(url);
    if host.is_empty() {
        return None;
    }
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    let default_port = if scheme == "http" || scheme == "ws" {
        80
    } else {
        443
    };
    // `[v6]:port`, `v4:port`, bare.
    let (ip, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, tail) = rest.split_once(']')?;
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        (ip.to_string(), port)
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
            _ => (host.to_string(), None),
        }
    };
    let ip = ip.rsplit('@').next().unwrap_or(&ip).to_string();
    ip.parse::<std::net::IpAddr>().ok()?;
    Some((ip, port.unwrap_or(default_port)))
}

/// Backend URLs the gateway calls, with the backend name and operations.
fn backend_targets(snapshot: &Snapshot, map: &[RouteEntry]) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut add = |backend: &str, url: &str, op: Option<String>| match out
        .iter_mut()
        .find(|(_, u, _)| u == url)
    {
        Some(entry) => {
            if let Some(op) = op
                && !entry.2.contains(&op)
            {
                entry.2.push(op);
            }
        }
        None => out.push((
            backend.to_string(),
            url.to_string(),
            op.into_iter().collect(),
        )),
    };
    for entry in map {
        for r in entry.routes() {
            let op = Some(format!("{}/{}", entry.api, entry.operation));
            match &r.url {
                Some(url) => add(&r.backend, url, op),
                None if Cidr::parse(&r.backend).is_some() => {
                    add(&r.backend, &format!("https://{}", r.backend), op)
                }
                None => {}
            }
        }
    }
    for b in &snapshot.backends {
        if let Some(url) = &b.url {
            add(&b.id, url, None);
        }
    }
    for a in &snapshot.apis {
        if let Some(url) = &a.service_url {
            add(url_host(url), url, Some(a.id.clone()));
        }
    }
    out
}

/// (b) gateway → backend flows an outbound rule denies.
fn backend_findings(
    snapshot: &Snapshot,
    map: &[RouteEntry],
    target: &ApimNsg<'_>,
    ctx: &NetContext,
) -> Vec<Finding> {
    let service = snapshot.service.as_ref();
    let gateway = gateway_endpoint(service);
    let nsg = target.nsg;
    let mut out = Vec::new();
    let mut seen: Vec<(String, u16)> = Vec::new();
    for (backend, url, ops) in backend_targets(snapshot, map) {
        let Some((ip, port)) = url_ip_port(&url) else {
            continue;
        };
        if seen.contains(&(ip.clone(), port)) {
            continue;
        }
        seen.push((ip.clone(), port));
        let flow = Flow::new(Direction::Outbound, &gateway, &ip, port);
        let v = evaluate_in(nsg, &flow, ctx);
        if v.access != Access::Deny || !v.certain() {
            continue;
        }
        let mut subj = subject(service, nsg, Some(&v.rule));
        subj.backend = Some(backend.clone());
        let summary = format!(
            "NSG {}: gateway -> backend {backend} ({ip}:{port}) is denied by {} (priority {})",
            nsg.name, v.rule, v.priority
        );
        let used_by = if ops.is_empty() {
            String::new()
        } else {
            format!(" Used by {}.", ops.join(", "))
        };
        let mut e = Evidence::text(format!(
            "{}: denied by {} (priority {}).{used_by}",
            flow.describe(),
            v.rule,
            v.priority
        ))
        .value("port", f64::from(port))
        .value("priority", f64::from(v.priority));
        e.sources.push(nsg.origin.clone());
        let suggested = suggest_priority(nsg, Direction::Outbound, v.priority);
        let mut hint = Evidence::text(format!(
            "Allow outbound TCP {port} to {ip} at a priority below {} (e.g. {suggested}), or narrow {}.",
            v.priority, v.rule
        ));
        hint.excerpt = Some(rule_excerpt(
            &format!("Allow_Backend_{}", backend.replace(['.', ':', '/'], "_")),
            Direction::Outbound,
            "VirtualNetwork",
            &ip,
            &[port],
            suggested,
        ));
        let f = Finding::new(FindingKind::NetworkGap, Severity::High, subj, summary)
            .evidence(e)
            .evidence(hint)
            .confidence(target.confidence);
        out.push(finish(f, BACKEND_DENIED, &format!("{ip}:{port}"), nsg));
    }
    out
}

fn is_default(nsg: &Nsg, r: &SecurityRule) -> bool {
    r.default || nsg.default_rules.iter().any(|d| d.name == r.name)
}

/// (c) allow rules that can never match: a higher-priority deny covers
/// everything they allow.
fn shadow_findings(service: Option<&Service>, nsg: &Nsg, ctx: &NetContext) -> Vec<Finding> {
    let mut out = Vec::new();
    for dir in [Direction::Inbound, Direction::Outbound] {
        let rules = ordered_rules(nsg, dir);
        for (i, allow) in rules.iter().enumerate() {
            if allow.access != Access::Allow || is_default(nsg, allow) {
                continue;
            }
            let shadow = rules.iter().take(i).find(|d| {
                d.access == Access::Deny
                    && d.priority < allow.priority
                    && rule_contains(d, allow, ctx) == Tri::Yes
            });
            let Some(deny) = shadow else {
                continue;
            };
            let summary = format!(
                "NSG {}: allow rule {} (priority {}) never takes effect: {} (priority {}) denies everything it allows",
                nsg.name, allow.name, allow.priority, deny.name, deny.priority
            );
            let mut e = Evidence::text(format!(
                "{} {} -> {} ports {} ({}) is covered by deny {} {} -> {} ports {} ({}).",
                allow.name,
                allow.source_prefixes.join(","),
                allow.destination_prefixes.join(","),
                allow.destination_ports.join(","),
                allow.protocol,
                deny.name,
                deny.source_prefixes.join(","),
                deny.destination_prefixes.join(","),
                deny.destination_ports.join(","),
                deny.protocol
            ))
            .value("allow_priority", f64::from(allow.priority))
            .value("deny_priority", f64::from(deny.priority));
            e.sources.push(nsg.origin.clone());
            let hint = Evidence::text(format!(
                "Give {} a priority below {} (a smaller number), or narrow {}; if the allow is obsolete, delete it.",
                allow.name, deny.priority, deny.name
            ));
            let f = Finding::new(
                FindingKind::NetworkGap,
                Severity::Medium,
                subject(service, nsg, Some(&allow.name)),
                summary,
            )
            .evidence(e)
            .evidence(hint);
            out.push(finish(f, SHADOWED_ALLOW, "", nsg));
        }
    }
    out
}

/// (d) the management port 3443 reachable from the Internet.
fn management_open_findings(
    service: Option<&Service>,
    target: &ApimNsg<'_>,
    ctx: &NetContext,
) -> Vec<Finding> {
    let nsg = target.nsg;
    let gateway = gateway_endpoint(service);
    let flow = Flow::new(Direction::Inbound, "Internet", &gateway, 3443);
    let v = evaluate_in(nsg, &flow, ctx);
    if v.access != Access::Allow || !v.certain() || v.default_rule {
        return Vec::new();
    }
    let summary = format!(
        "NSG {}: management port 3443 is open to the Internet through {} (priority {})",
        nsg.name, v.rule, v.priority
    );
    let mut e = Evidence::text(format!(
        "{}: allowed by {} (priority {}). Only the ApiManagement service tag needs 3443.",
        flow.describe(),
        v.rule,
        v.priority
    ))
    .value("port", 3443.0)
    .value("priority", f64::from(v.priority));
    e.sources.push(nsg.origin.clone());
    let hint = Evidence::text(format!(
        "Restrict {}'s source to the ApiManagement service tag (or drop 3443 from its ports).",
        v.rule
    ));
    let f = Finding::new(
        FindingKind::NetworkGap,
        Severity::High,
        subject(service, nsg, Some(&v.rule)),
        summary,
    )
    .evidence(e)
    .evidence(hint)
    .confidence(target.confidence);
    vec![finish(f, MANAGEMENT_OPEN, "", nsg)]
}

/// Every network-gap finding of the snapshot.
pub fn findings(snapshot: &Snapshot, backend_map: &[RouteEntry]) -> Vec<Finding> {
    let ctx = net_context(snapshot);
    let service = snapshot.service.as_ref();
    let mut out = Vec::new();
    if let Some(mode) = vnet_mode(service) {
        for target in apim_nsgs(snapshot) {
            // Without a service, be conservative: only NSGs that clearly
            // guard an APIM subnet, only the rows of both modes.
            out.extend(required_flow_findings(service, &target, mode, &ctx));
            out.extend(management_open_findings(service, &target, &ctx));
            if service.is_some() {
                out.extend(backend_findings(snapshot, backend_map, &target, &ctx));
            }
        }
    }
    for nsg in &snapshot.nsgs {
        out.extend(shadow_findings(service, nsg, &ctx));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::eval::tests::rule;
    use super::*;
    use crate::model::{Origin, Route, RouteSource};
    use Access::{Allow, Deny};
    use Direction::{Inbound, Outbound};
    use serde_json::Value;

    fn strings(v: Option<&Value>) -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn union(p: &Value, one: &str, many: &str) -> Vec<String> {
        let mut v = strings(p.get(one));
        v.extend(strings(p.get(many)));
        v
    }

    fn rule_from_json(r: &Value, default: bool) -> SecurityRule {
        let p = r.get("properties").unwrap_or(r);
        let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        SecurityRule {
            name: r.get("name").and_then(Value::as_str).unwrap_or("").into(),
            priority: p.get("priority").and_then(Value::as_u64).unwrap_or(0) as u32,
            direction: if text("direction") == "Inbound" {
                Inbound
            } else {
                Outbound
            },
            access: if text("access") == "Allow" {
                Allow
            } else {
                Deny
            },
            protocol: text("protocol"),
            source_prefixes: union(p, "sourceAddressPrefix", "sourceAddressPrefixes"),
            source_ports: union(p, "sourcePortRange", "sourcePortRanges"),
            destination_prefixes: union(
                p,
                "destinationAddressPrefix",
                "destinationAddressPrefixes",
            ),
            destination_ports: union(p, "destinationPortRange", "destinationPortRanges"),
            description: p
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            default,
        }
    }

    /// A test-only NSG reader (the real one lives in `collect`).
    pub(crate) fn nsg_from_json(name: &str, v: &Value) -> Nsg {
        let p = v.get("properties").unwrap_or(v);
        let list = |k: &str, d: bool| -> Vec<SecurityRule> {
            p.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|r| rule_from_json(r, d)).collect())
                .unwrap_or_default()
        };
        Nsg {
            name: name.into(),
            rules: list("securityRules", false),
            default_rules: list("defaultSecurityRules", true),
            origin: Origin::file(name),
            ..Nsg::default()
        }
    }

    fn corpus(rel: &str) -> Option<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus")
            .join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).ok(),
            Err(_) => {
                eprintln!("skipping: {} is absent", path.display());
                None
            }
        }
    }

    const QUICKSTART: &str = "apim/json/transcribed/quickstarts__api-management-create-with-internal-vnet-publicip__azuredeploy.json";

    fn quickstart_nsg() -> Option<Nsg> {
        let doc = corpus(QUICKSTART)?;
        let res = doc.get("resources")?.as_array()?.iter().find(|r| {
            r.get("type").and_then(Value::as_str) == Some("Microsoft.Network/networkSecurityGroups")
        })?;
        Some(nsg_from_json("apimnsg", res))
    }

    fn service(vnet: &str, sku: &str) -> Service {
        Service {
            name: "contoso".into(),
            sku: Some(sku.into()),
            capacity: Some(2),
            vnet_type: Some(vnet.into()),
            subnet_id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/apim".into()),
            platform_version: Some("stv2".into()),
            location: Some("West US".into()),
            ..Service::default()
        }
    }

    /// The rules the 2025 page asks for, as an operator would write them.
    pub(crate) fn healthy_nsg() -> Nsg {
        let r = rule;
        let mut n = Nsg {
            name: "apim-subnet-nsg".into(),
            rules: vec![
                r(
                    "Client",
                    100,
                    Inbound,
                    Allow,
                    "Tcp",
                    "Internet",
                    "VirtualNetwork",
                    "443",
                ),
                r(
                    "Mgmt",
                    110,
                    Inbound,
                    Allow,
                    "Tcp",
                    "ApiManagement",
                    "VirtualNetwork",
                    "3443",
                ),
                r(
                    "Lb",
                    120,
                    Inbound,
                    Allow,
                    "Tcp",
                    "AzureLoadBalancer",
                    "VirtualNetwork",
                    "6390",
                ),
                r(
                    "Tm",
                    130,
                    Inbound,
                    Allow,
                    "Tcp",
                    "AzureTrafficManager",
                    "VirtualNetwork",
                    "443",
                ),
                r(
                    "Cert",
                    100,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "Internet",
                    "80",
                ),
                r(
                    "Storage",
                    110,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "Storage",
                    "443",
                ),
                r(
                    "Sql",
                    120,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "SQL",
                    "1433",
                ),
                r(
                    "Kv",
                    130,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "AzureKeyVault",
                    "443",
                ),
                r(
                    "Monitor",
                    140,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "AzureMonitor",
                    "1886,443",
                ),
                r(
                    "Backends",
                    150,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "VirtualNetwork",
                    "443",
                ),
                r(
                    "DenyInternet",
                    4000,
                    Outbound,
                    Deny,
                    "*",
                    "VirtualNetwork",
                    "Internet",
                    "*",
                ),
            ],
            ..Nsg::default()
        };
        n.subnets = vec![service("External", "Premium").subnet_id.unwrap_or_default()];
        n
    }

    fn snapshot(service: Option<Service>, nsgs: Vec<Nsg>) -> Snapshot {
        Snapshot {
            service,
            nsgs,
            ..Snapshot::default()
        }
    }

    fn ids(fs: &[Finding]) -> Vec<(String, String)> {
        fs.iter()
            .map(|f| (f.rule.clone().unwrap_or_default(), f.summary.clone()))
            .collect()
    }

    #[test]
    fn quickstart_template_blocks_certificate_validation() {
        let Some(nsg) = quickstart_nsg() else { return };
        assert_eq!(nsg.rules.len(), 16);
        // The direct question: outbound Internet 80.
        let v = evaluate(&nsg, &Flow::new(Outbound, "VirtualNetwork", "Internet", 80));
        assert_eq!(
            (v.access, v.rule.as_str(), v.priority),
            (Deny, "Deny_All_Internet_Outbound", 999)
        );
        // As a finding, with an Internal service on stv2 (the template's mode).
        let fs = findings(
            &snapshot(Some(service("Internal", "Premium")), vec![nsg.clone()]),
            &[],
        );
        let cert: Vec<&Finding> = fs
            .iter()
            .filter(|f| f.rule.as_deref() == Some(REQUIRED_DENIED))
            .collect();
        assert_eq!(cert.len(), 1, "{:#?}", ids(&fs));
        let f = cert[0];
        assert_eq!(
            f.subject.rule.as_deref(),
            Some("Deny_All_Internet_Outbound")
        );
        assert!(
            f.summary.contains("Internet") && f.summary.contains("80"),
            "{}",
            f.summary
        );
        assert_eq!(f.evidence[0].values["suggested_priority"], 990.0);
        assert!(
            f.evidence[1]
                .excerpt
                .as_deref()
                .unwrap_or("")
                .contains("\"Outbound\"")
        );
        // Without a service: the NSG still looks like APIM's (3443 from ApiManagement).
        let fs = findings(&snapshot(None, vec![nsg.clone()]), &[]);
        assert!(
            fs.iter()
                .any(|f| f.subject.rule.as_deref() == Some("Deny_All_Internet_Outbound"))
        );
        // On stv1 the certificate rule is not in the table.
        let mut old = service("Internal", "Premium");
        old.platform_version = Some("stv1".into());
        let fs = findings(&snapshot(Some(old), vec![nsg]), &[]);
        assert!(
            fs.iter()
                .all(|f| f.rule.as_deref() != Some(REQUIRED_DENIED)),
            "{:#?}",
            ids(&fs)
        );
    }

    #[test]
    fn quickstart_template_through_collect() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus")
            .join(QUICKSTART);
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipping: {} is absent", path.display());
            return;
        };
        let snap = crate::collect::parse_document(&path.display().to_string(), &bytes);
        assert_eq!(snap.nsgs.len(), 1, "{:?}", snap.loaded.problems);
        let fs = findings(&snap, &[]);
        let cert: Vec<&Finding> = fs
            .iter()
            .filter(|f| {
                f.rule.as_deref() == Some(REQUIRED_DENIED)
                    && f.subject.rule.as_deref() == Some("Deny_All_Internet_Outbound")
            })
            .collect();
        assert_eq!(cert.len(), 1, "{:#?}", ids(&fs));
        assert!(cert[0].summary.contains("TCP 80"), "{}", cert[0].summary);
    }

    #[test]
    fn healthy_external_premium_has_no_findings() {
        let fs = findings(
            &snapshot(Some(service("External", "Premium")), vec![healthy_nsg()]),
            &[],
        );
        assert!(fs.is_empty(), "{:#?}", ids(&fs));
    }

    #[test]
    fn missing_management_rule_is_named_and_defaults_count() {
        let mut n = healthy_nsg();
        n.rules.retain(|r| r.name != "Mgmt");
        let fs = findings(
            &snapshot(Some(service("Internal", "Premium")), vec![n]),
            &[],
        );
        assert_eq!(fs.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(fs[0].subject.rule.as_deref(), Some("DenyAllInBound"));
        assert!(fs[0].summary.contains("3443"));
        assert_eq!(fs[0].severity, Severity::High);
    }

    #[test]
    fn external_mode_requires_client_traffic_internal_does_not() {
        let mut n = healthy_nsg();
        n.rules.retain(|r| r.name != "Client" && r.name != "Tm");
        let ext = findings(
            &snapshot(Some(service("External", "Premium")), vec![n.clone()]),
            &[],
        );
        assert!(
            ext.iter().any(|f| f.summary.contains("client traffic")),
            "{:#?}",
            ids(&ext)
        );
        let int = findings(
            &snapshot(Some(service("Internal", "Premium")), vec![n.clone()]),
            &[],
        );
        assert!(int.is_empty(), "{:#?}", ids(&int));
        // No VNet: nothing about APIM flows.
        let none = findings(&snapshot(Some(service("None", "Premium")), vec![n]), &[]);
        assert!(none.is_empty(), "{:#?}", ids(&none));
    }

    #[test]
    fn gateway_behind_front_door_is_not_a_gap() {
        let mut n = healthy_nsg();
        n.rules.retain(|r| r.name != "Client" && r.name != "Tm");
        n.rules.push(rule(
            "FrontDoorOnly",
            100,
            Inbound,
            Allow,
            "Tcp",
            "AzureFrontDoor.Backend",
            "VirtualNetwork",
            "443",
        ));
        let fs = findings(
            &snapshot(Some(service("External", "Premium")), vec![n.clone()]),
            &[],
        );
        assert!(fs.is_empty(), "{:#?}", ids(&fs));
        // With a second region, Traffic Manager's probes are needed too.
        let mut multi = service("External", "Premium");
        multi.additional_locations = vec!["North Europe".into()];
        let fs = findings(&snapshot(Some(multi), vec![n]), &[]);
        assert_eq!(fs.len(), 1, "{:#?}", ids(&fs));
        assert!(fs[0].summary.contains("AzureTrafficManager"));
    }

    #[test]
    fn outbound_on_default_rule_is_info() {
        let mut n = healthy_nsg();
        n.rules.retain(|r| r.direction == Inbound);
        let fs = findings(
            &snapshot(Some(service("External", "Premium")), vec![n]),
            &[],
        );
        assert_eq!(fs.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(fs[0].rule.as_deref(), Some(REQUIRED_ON_DEFAULT));
        assert_eq!(fs[0].severity, Severity::Info);
    }

    #[test]
    fn load_balancer_denied_is_critical_when_scaled() {
        let mut n = healthy_nsg();
        n.rules.retain(|r| r.name != "Lb");
        n.rules.push(rule(
            "DenyLb",
            150,
            Inbound,
            Deny,
            "*",
            "AzureLoadBalancer",
            "*",
            "*",
        ));
        let fs = findings(
            &snapshot(Some(service("External", "Premium")), vec![n]),
            &[],
        );
        let lb: Vec<&Finding> = fs.iter().filter(|f| f.summary.contains("6390")).collect();
        assert_eq!(lb.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(lb[0].severity, Severity::Critical);
        assert_eq!(lb[0].subject.rule.as_deref(), Some("DenyLb"));
    }

    #[test]
    fn backend_ip_denied_outbound() {
        let mut n = healthy_nsg();
        n.rules.push(rule(
            "DenyBackend",
            105,
            Outbound,
            Deny,
            "*",
            "*",
            "10.2.0.0/24",
            "*",
        ));
        let entry = |url: &str| RouteEntry {
            api: "orders".into(),
            operation: "get".into(),
            configured: vec![Route {
                backend: "orders-be".into(),
                url: Some(url.into()),
                source: RouteSource::ServiceUrl,
                conditional: false,
            }],
            observed: vec![],
            health: Default::default(),
            requests: 0,
            error_rate: 0.0,
            p95_ms: None,
            mismatch: false,
        };
        let snap = snapshot(Some(service("External", "Premium")), vec![n]);
        let fs = findings(&snap, &[entry("http://10.2.0.7:8080/api")]);
        let be: Vec<&Finding> = fs
            .iter()
            .filter(|f| f.rule.as_deref() == Some(BACKEND_DENIED))
            .collect();
        assert_eq!(be.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(be[0].subject.backend.as_deref(), Some("orders-be"));
        assert!(be[0].summary.contains("10.2.0.7:8080"));
        // Another subnet, or a host name: nothing.
        let fs = findings(
            &snap,
            &[
                entry("https://10.3.0.7/api"),
                entry("https://orders.internal/api"),
            ],
        );
        assert!(fs.is_empty(), "{:#?}", ids(&fs));
    }

    #[test]
    fn shadowed_allow_is_found_and_ordered_allow_is_not() {
        let n = Nsg {
            name: "app-nsg".into(),
            rules: vec![
                rule(
                    "DenyInternet",
                    100,
                    Outbound,
                    Deny,
                    "*",
                    "*",
                    "Internet",
                    "*",
                ),
                rule(
                    "AllowStorage",
                    200,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "Storage",
                    "443",
                ),
                rule(
                    "AllowVnet",
                    300,
                    Outbound,
                    Allow,
                    "Tcp",
                    "VirtualNetwork",
                    "VirtualNetwork",
                    "443",
                ),
            ],
            ..Nsg::default()
        };
        let fs = findings(&snapshot(None, vec![n.clone()]), &[]);
        assert_eq!(fs.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(fs[0].subject.rule.as_deref(), Some("AllowStorage"));
        assert!(fs[0].summary.contains("DenyInternet"));
        let mut fixed = n;
        fixed.rules[1].priority = 90;
        assert!(findings(&snapshot(None, vec![fixed]), &[]).is_empty());
    }

    #[test]
    fn management_port_open_to_internet() {
        let mut n = healthy_nsg();
        n.rules
            .push(rule("AnyMgmt", 105, Inbound, Allow, "*", "*", "*", "3443"));
        let fs = findings(
            &snapshot(Some(service("External", "Premium")), vec![n]),
            &[],
        );
        assert_eq!(fs.len(), 1, "{:#?}", ids(&fs));
        assert_eq!(fs[0].rule.as_deref(), Some(MANAGEMENT_OPEN));
        assert_eq!(fs[0].subject.rule.as_deref(), Some("AnyMgmt"));
    }

    #[test]
    fn unrelated_nsg_without_service_is_left_alone() {
        // A backend NSG with no APIM rules: no required-flow findings.
        let n = Nsg {
            name: "backend-nsg".into(),
            rules: vec![rule(
                "Web",
                100,
                Inbound,
                Allow,
                "Tcp",
                "VirtualNetwork",
                "*",
                "443",
            )],
            ..Nsg::default()
        };
        assert!(findings(&snapshot(None, vec![n]), &[]).is_empty());
    }

    #[test]
    fn corpus_nsg_get_has_six_defaults() {
        let Some(doc) =
            corpus("apim/json/transcribed/spec__network__2024-05-01__NetworkSecurityGroupGet.json")
        else {
            return;
        };
        let Some(body) = doc.pointer("/responses/200/body") else {
            panic!("no body")
        };
        let n = nsg_from_json("testnsg", body);
        assert_eq!(n.default_rules.len(), 6);
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 80));
        assert_eq!((v.access, v.rule.as_str()), (Allow, "rule1"));
        let v = evaluate(&n, &Flow::new(Inbound, "Internet", "VirtualNetwork", 81));
        assert_eq!(
            (v.access, v.rule.as_str(), v.default_rule),
            (Deny, "DenyAllInBound", true)
        );
    }

    #[test]
    fn url_ip_parsing() {
        assert_eq!(
            url_ip_port("https://10.0.0.4/x"),
            Some(("10.0.0.4".into(), 443))
        );
        assert_eq!(
            url_ip_port("http://10.0.0.4:8080"),
            Some(("10.0.0.4".into(), 8080))
        );
        assert_eq!(
            url_ip_port("http://[fd00::1]:81/"),
            Some(("fd00::1".into(), 81))
        );
        assert_eq!(url_ip_port("https://orders.internal/x"), None);
        assert_eq!(url_ip_port("nope"), None);
    }
}
