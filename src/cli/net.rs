//! `apimedic net check`: decide one flow through a network security group
//! the way Azure does (priority order, default rules, first match wins) and
//! say which rule decided it. Exit 0 allowed, 1 denied, 2 error.

use crate::analyze::network::{self, Cidr};
use crate::model::network::{Flow, Protocol, Verdict};
use crate::model::{Access, Direction, Nsg};
use crate::report;
use anyhow::{Context, bail};
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
    /// Or a live instance (--azure ID): its gateway subnet's NSG, with the
    /// effective rules of a NIC in the subnet when they can be read.
    #[arg(long, required_unless_present_any = ["azure", "subscription"])]
    pub nsg: Vec<PathBuf>,
    /// Which NSG to use when the input holds several.
    #[arg(long)]
    pub nsg_name: Option<String>,
    /// Source: `gateway` (the gateway's subnet), an IP, a CIDR, a service
    /// tag (`Internet`, `ApiManagement`, `Storage.WestEurope`…) or `*`.
    #[arg(long = "from")]
    pub from: String,
    /// Destination: `gateway`, an IP, a CIDR, a service tag or `*`.
    #[arg(long = "to")]
    pub to: String,
    /// Destination port.
    #[arg(long)]
    pub port: u16,
    /// `tcp`, `udp`, `icmp` or `*`.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Default: as diagnose evaluates a flow on the gateway subnet's NSG —
    /// outbound when the source is the gateway (`gateway`, `VirtualNetwork`,
    /// an address in the gateway's subnet or --vnet, or a private address
    /// going to a public one), inbound otherwise. The output says which was used.
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
    #[command(flatten)]
    pub azure: super::azure::AzureArgs,
    #[command(flatten)]
    pub span: super::azure::SpanArgs,
}

pub fn run(args: NetArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        NetCommand::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let snapshot = if args.azure.is_live() {
        if !args.nsg.is_empty() {
            bail!("give --nsg files or a live target (--azure, --subscription), not both");
        }
        let mut azure = args.azure.clone();
        azure.quiet = true;
        azure.load_one(&args.span)?.unwrap_or_default()
    } else {
        crate::collect::collect(&args.nsg)
            .with_context(|| format!("reading {}", show_paths(&args.nsg)))?
    };
    let nsg = pick_nsg(&snapshot.nsgs, args.nsg_name.as_deref(), &args.nsg)?;
    // Said when a live read could not get the effective rules.
    let fallback: Vec<String> = snapshot
        .loaded
        .problems
        .iter()
        .filter(|p| p.message.contains("effective security rules"))
        .map(|p| p.message.clone())
        .collect();
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
    let from = endpoint(&args.from, "--from")?;
    let to = endpoint(&args.to, "--to")?;
    let (direction, why) = match args.direction {
        Some(DirectionArg::In) => (Direction::Inbound, "given with --direction".to_string()),
        Some(DirectionArg::Out) => (Direction::Outbound, "given with --direction".to_string()),
        None => infer_direction(&from, &to, &ctx.vnet_prefixes),
    };
    let flow = Flow {
        direction,
        source: from,
        destination: to,
        port: args.port,
        protocol,
    };
    let verdict = network::evaluate_in(nsg, &flow, &ctx);
    let mut out = std::io::stdout().lock();
    render(&mut out, nsg, &flow, &verdict, args.format, &why)?;
    if args.format == OutputFormat::Text {
        for f in &fallback {
            writeln!(out, "  note: {}", crate::model::redact::scrub(f))?;
        }
    }
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

/// Azure service tags a flow endpoint may name (a regional form such as
/// `Storage.WestEurope` is accepted for any of them).
pub const SERVICE_TAGS: &[&str] = &[
    "VirtualNetwork",
    "Internet",
    "AzureLoadBalancer",
    "ApiManagement",
    "AzureTrafficManager",
    "Storage",
    "Sql",
    "AzureKeyVault",
    "AzureMonitor",
    "AzureActiveDirectory",
    "AzureConnectors",
    "EventHub",
    "ServiceBus",
    "AzureCloud",
    "AppService",
    "AzureCosmosDB",
    "AzureContainerRegistry",
    "AzureFrontDoor.Backend",
    "AzureFrontDoor.Frontend",
    "GatewayManager",
    "AzureBackup",
    "AzureMachineLearning",
    "CognitiveServicesManagement",
    "AzureOpenAIDataPlane",
    "DataFactory",
    "AzureDevOps",
    "LogicApps",
    "PowerPlatformInfra",
    "AzureSignalR",
    "AzureArcInfrastructure",
];

/// A flow endpoint as the evaluator reads it: `gateway` is the gateway's
/// subnet (`VirtualNetwork`); an unknown name is an error listing the
/// accepted forms rather than a silent "matches nothing".
pub fn endpoint(text: &str, flag: &str) -> anyhow::Result<String> {
    let t = text.trim();
    if t == "*" || Cidr::parse(t).is_some() {
        return Ok(t.to_string());
    }
    if t.eq_ignore_ascii_case("gateway") || t.eq_ignore_ascii_case("apim") {
        return Ok("VirtualNetwork".to_string());
    }
    let known = |name: &str| {
        SERVICE_TAGS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .map(|k| k.to_string())
    };
    if let Some(k) = known(t) {
        return Ok(k);
    }
    if let Some((base, region)) = t.split_once('.')
        && let Some(k) = known(base)
        && !region.is_empty()
        && region.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Ok(format!("{k}.{region}"));
    }
    bail!(
        "{flag} {t:?} is not an endpoint: use `gateway` (the gateway's subnet), an IP (10.0.1.4), a CIDR (10.0.0.0/16), `*`, or a service tag: {} (a regional form like Storage.WestEurope also works)",
        SERVICE_TAGS.join(", ")
    )
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

fn is_private(s: &str) -> bool {
    Cidr::parse(s).is_some_and(|c| c.is_private())
}

/// The direction diagnose uses for a flow on the gateway subnet's NSG, and
/// why: traffic from the gateway (to a backend, to Azure services) leaves
/// the subnet (outbound); traffic to it arrives (inbound).
pub fn infer_direction(from: &str, to: &str, vnet: &[Cidr]) -> (Direction, String) {
    let from_in = inside_vnet(from, vnet);
    let to_in = inside_vnet(to, vnet);
    if from_in && !to_in {
        return (
            Direction::Outbound,
            "inferred: the source is the gateway's network and the destination is outside it (gateway → backend or service)".into(),
        );
    }
    if to_in && !from_in {
        return (
            Direction::Inbound,
            "inferred: the destination is the gateway's network (client or management traffic to the gateway)".into(),
        );
    }
    if vnet.is_empty()
        && is_private(from)
        && !is_private(to)
        && !to.eq_ignore_ascii_case("VirtualNetwork")
    {
        return (
            Direction::Outbound,
            "inferred: a private source (the gateway subnet) to a public destination; give --vnet to be exact".into(),
        );
    }
    if from_in && to_in {
        return (
            Direction::Outbound,
            "inferred: both ends are in the virtual network; evaluated as the gateway calling a private backend (outbound from the gateway subnet), pass --direction in for the reverse".into(),
        );
    }
    (
        Direction::Inbound,
        "inferred: the source is outside the gateway's network".into(),
    )
}

/// Writes the verdict (`report::net`): text or JSON.
pub fn render(
    out: &mut impl Write,
    nsg: &Nsg,
    flow: &Flow,
    verdict: &Verdict,
    format: OutputFormat,
    direction_reason: &str,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => {
            let j = report::net::NetCheck::new(nsg, flow, verdict, direction_reason);
            serde_json::to_writer_pretty(&mut *out, &j)?;
            writeln!(out)?;
        }
        OutputFormat::Text => write!(
            out,
            "{}",
            report::net::text(nsg, flow, verdict, direction_reason)
        )?,
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

    #[test]
    fn direction_inference_and_nsg_choice() {
        let d = |f: &str, t: &str, v: &[Cidr]| infer_direction(f, t, v).0;
        assert_eq!(d("VirtualNetwork", "Internet", &[]), Direction::Outbound);
        assert_eq!(d("Internet", "VirtualNetwork", &[]), Direction::Inbound);
        let vnet = [Cidr::parse("10.0.0.0/16").unwrap_or_else(|| panic!("cidr"))];
        assert_eq!(d("10.0.1.4", "52.1.1.1", &vnet), Direction::Outbound);
        // Gateway → private backend is outbound from the gateway subnet, as
        // diagnose evaluates it; without --vnet a private source to a
        // public address is the gateway calling out.
        assert_eq!(d("VirtualNetwork", "10.1.0.4", &vnet), Direction::Outbound);
        assert_eq!(d("10.0.1.4", "10.0.2.9", &vnet), Direction::Outbound);
        assert_eq!(d("10.0.1.4", "52.1.1.1", &[]), Direction::Outbound);
        assert_eq!(d("52.1.1.1", "10.0.1.4", &[]), Direction::Inbound);
        assert!(
            infer_direction("VirtualNetwork", "Storage", &[])
                .1
                .contains("gateway")
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

    #[test]
    fn unknown_endpoint_names_are_errors_with_the_accepted_forms() {
        assert_eq!(endpoint("gateway", "--from").unwrap(), "VirtualNetwork");
        assert_eq!(endpoint("storage", "--to").unwrap(), "Storage");
        assert_eq!(
            endpoint("Storage.WestEurope", "--to").unwrap(),
            "Storage.WestEurope"
        );
        assert_eq!(endpoint("10.0.0.0/16", "--to").unwrap(), "10.0.0.0/16");
        assert_eq!(endpoint("*", "--to").unwrap(), "*");
        let err = endpoint("Internett", "--to").unwrap_err().to_string();
        assert!(
            err.starts_with("--to \"Internett\" is not an endpoint"),
            "{err}"
        );
        assert!(
            err.contains("`gateway`") && err.contains("AzureLoadBalancer"),
            "{err}"
        );
        assert!(endpoint("my-backend", "--to").is_err());
    }
}
