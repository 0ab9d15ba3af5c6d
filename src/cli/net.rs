//! `apimedic net check`: decide one flow through a network security group
//! the way Azure does (priority order, default rules, first match wins) and
//! say which rule decided it. Exit 0 allowed, 1 denied, 2 error.

use crate::analyze::network::{self, Cidr, Flow, Protocol, Verdict};
use crate::model::{Access, Direction, Nsg};
use anyhow::{Context, bail};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct NetArgs {
    #[command(subcommand)]
    pub command: NetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NetCommand {
    /// Decide one flow through an NSG: which rule allows or denies it.
    Check(CheckArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    In,
    Out,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// NSG file or folder (REST, `az` or ARM-template JSON); repeatable.
    #[arg(long, required = true)]
    pub nsg: Vec<PathBuf>,
    /// Which NSG to use when the input holds several.
    #[arg(long)]
    pub nsg_name: Option<String>,
    /// Source: IP, CIDR, service tag (`Internet`, `ApiManagement`…) or `*`.
    #[arg(long = "from")]
    pub from: String,
    /// Destination: IP, CIDR, service tag (`VirtualNetwork`, `Storage`…) or `*`.
    #[arg(long = "to")]
    pub to: String,
    /// Destination port.
    #[arg(long)]
    pub port: u16,
    /// `tcp`, `udp`, `icmp` or `*`.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Default: `out` when --from is VirtualNetwork (or inside --vnet) and
    /// --to is not, else `in`.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Address space of the VNet (`VirtualNetwork` tag), repeatable; without
    /// it private addresses count as inside.
    #[arg(long = "vnet")]
    pub vnet: Vec<String>,
    /// `text`: first line `allowed|denied by <rule> (priority N)`; `json`:
    /// the flow and the verdict.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

pub fn run(args: NetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        NetCommand::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let snapshot = crate::collect::collect(&args.nsg)
        .with_context(|| format!("reading {}", show_paths(&args.nsg)))?;
    let nsg = pick_nsg(&snapshot.nsgs, args.nsg_name.as_deref(), &args.nsg)?;
    let mut ctx = network::net_context(&snapshot);
    for v in &args.vnet {
        let c = Cidr::parse(v)
            .with_context(|| format!("--vnet {v:?} is not a CIDR (e.g. 10.0.0.0/16)"))?;
        ctx.vnet_prefixes.push(c);
    }
    let protocol = Protocol::parse(&args.protocol).with_context(|| {
        format!(
            "--protocol {:?} is not one of tcp, udp, icmp, *",
            args.protocol
        )
    })?;
    let direction = match args.direction {
        Some(DirectionArg::In) => Direction::Inbound,
        Some(DirectionArg::Out) => Direction::Outbound,
        None => infer_direction(&args.from, &args.to, &ctx.vnet_prefixes),
    };
    let flow = Flow {
        direction,
        source: args.from.clone(),
        destination: args.to.clone(),
        port: args.port,
        protocol,
    };
    let verdict = network::evaluate_in(nsg, &flow, &ctx);
    let mut out = std::io::stdout().lock();
    render(&mut out, nsg, &flow, &verdict, args.format)?;
    Ok(match verdict.access {
        Access::Allow => ExitCode::SUCCESS,
        Access::Deny => ExitCode::from(1),
    })
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one NSG to evaluate.
fn pick_nsg<'a>(nsgs: &'a [Nsg], name: Option<&str>, paths: &[PathBuf]) -> anyhow::Result<&'a Nsg> {
    let names = || {
        nsgs.iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (name, nsgs) {
        (_, []) => bail!(
            "no network security group found in {}: give an NSG as REST/az JSON or an ARM template with a Microsoft.Network/networkSecurityGroups resource",
            show_paths(paths)
        ),
        (None, [only]) => Ok(only),
        (None, _) => bail!(
            "{} NSGs found ({}): choose one with --nsg-name",
            nsgs.len(),
            names()
        ),
        (Some(want), _) => nsgs
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(want))
            .with_context(|| format!("no NSG named {want:?}; found: {}", names())),
    }
}

fn inside_vnet(s: &str, vnet: &[Cidr]) -> bool {
    if s.trim().eq_ignore_ascii_case("VirtualNetwork") {
        return true;
    }
    match Cidr::parse(s) {
        Some(c) if !vnet.is_empty() => vnet.iter().any(|v| v.contains(&c)),
        _ => false,
    }
}

/// Outbound when the source is the VNet and the destination is not.
pub fn infer_direction(from: &str, to: &str, vnet: &[Cidr]) -> Direction {
    if inside_vnet(from, vnet) && !inside_vnet(to, vnet) {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

#[derive(Serialize)]
struct JsonOut<'a> {
    nsg: &'a str,
    allowed: bool,
    flow: &'a Flow,
    verdict: &'a Verdict,
}

/// Writes the verdict: first line `allowed by <rule> (priority N)` or
/// `denied by <rule> (priority N)`, details indented below.
pub fn render(
    out: &mut impl Write,
    nsg: &Nsg,
    flow: &Flow,
    verdict: &Verdict,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let allowed = verdict.access == Access::Allow;
    match format {
        OutputFormat::Json => {
            let j = JsonOut {
                nsg: &nsg.name,
                allowed,
                flow,
                verdict,
            };
            serde_json::to_writer_pretty(&mut *out, &j)?;
            writeln!(out)?;
        }
        OutputFormat::Text => {
            let word = if allowed { "allowed" } else { "denied" };
            writeln!(
                out,
                "{word} by {} (priority {})",
                verdict.rule, verdict.priority
            )?;
            writeln!(out, "  nsg {}: {}", nsg.name, flow.describe())?;
            if verdict.default_rule {
                writeln!(out, "  {} is one of Azure's default rules", verdict.rule)?;
            }
            for u in &verdict.uncertain {
                writeln!(
                    out,
                    "  note: {u} might also match (address space or value unknown; see --vnet)"
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SecurityRule;

    fn nsg() -> Nsg {
        Nsg {
            name: "apimnsg".into(),
            rules: vec![SecurityRule {
                name: "Deny_All_Internet_Outbound".into(),
                priority: 999,
                direction: Direction::Outbound,
                access: Access::Deny,
                protocol: "*".into(),
                source_prefixes: vec!["VirtualNetwork".into()],
                source_ports: vec!["*".into()],
                destination_prefixes: vec!["Internet".into()],
                destination_ports: vec!["*".into()],
                description: None,
                default: false,
            }],
            ..Nsg::default()
        }
    }

    fn text(flow: &Flow, format: OutputFormat) -> String {
        let n = nsg();
        let v = network::evaluate(&n, flow);
        let mut buf = Vec::new();
        render(&mut buf, &n, flow, &v, format).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(buf).unwrap_or_default()
    }

    #[test]
    fn text_first_line_names_rule_and_priority() {
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "Internet", 80);
        let t = text(&f, OutputFormat::Text);
        assert_eq!(
            t.lines().next(),
            Some("denied by Deny_All_Internet_Outbound (priority 999)")
        );
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "VirtualNetwork", 443);
        let t = text(&f, OutputFormat::Text);
        assert!(
            t.starts_with("allowed by AllowVnetOutBound (priority 65000)\n"),
            "{t}"
        );
        assert!(t.contains("default rules"));
    }

    #[test]
    fn json_is_machine_readable() {
        let f = Flow::new(Direction::Outbound, "VirtualNetwork", "Internet", 80);
        let v: serde_json::Value =
            serde_json::from_str(&text(&f, OutputFormat::Json)).unwrap_or_default();
        assert_eq!(v["allowed"], false);
        assert_eq!(v["verdict"]["rule"], "Deny_All_Internet_Outbound");
        assert_eq!(v["verdict"]["access"], "deny");
        assert_eq!(v["flow"]["direction"], "outbound");
    }

    #[test]
    fn direction_inference_and_nsg_choice() {
        assert_eq!(
            infer_direction("VirtualNetwork", "Internet", &[]),
            Direction::Outbound
        );
        assert_eq!(
            infer_direction("Internet", "VirtualNetwork", &[]),
            Direction::Inbound
        );
        let vnet = [Cidr::parse("10.0.0.0/16").unwrap_or_else(|| panic!("cidr"))];
        assert_eq!(
            infer_direction("10.0.1.4", "52.1.1.1", &vnet),
            Direction::Outbound
        );
        let two = vec![
            nsg(),
            Nsg {
                name: "other".into(),
                ..Nsg::default()
            },
        ];
        let paths = [PathBuf::from("x")];
        assert!(pick_nsg(&two, None, &paths).is_err());
        assert_eq!(
            pick_nsg(&two, Some("OTHER"), &paths)
                .map(|n| n.name.as_str())
                .ok(),
            Some("other")
        );
        assert!(pick_nsg(&[], None, &paths).is_err());
    }
}
