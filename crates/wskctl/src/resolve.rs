//! `wskctl resolve NAME [--reverse] [--family 4|6] [--json]`: name resolution in the kernel
//! through the driver's RESOLVE (`WskGetAddressInfo` / `WskGetNameInfo`), not the user-mode
//! resolver.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use wskclient_ioctl::{AF_INET, AF_INET6, AF_UNSPEC};

use crate::client::{Client, NtStatus, Resolved};

/// `resolve` arguments.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// A host name or numeric address; with `--reverse`, an IPv4 or IPv6 address.
    pub name: String,
    /// Address -> host name (WskGetNameInfo) instead of host name -> addresses.
    #[arg(long)]
    pub reverse: bool,
    /// Only IPv4 (4) or IPv6 (6) addresses (forward only).
    #[arg(long, value_parser = clap::value_parser!(u8).range(4..=6), conflicts_with = "reverse")]
    pub family: Option<u8>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ForwardJson<'a> {
    name: &'a str,
    addresses: Vec<String>,
    total: u32,
}

#[derive(Serialize)]
struct ReverseJson<'a> {
    address: &'a str,
    name: &'a str,
}

/// The family hint of `--family`.
///
/// Errors: a value other than 4 or 6.
pub fn family_hint(family: Option<u8>) -> anyhow::Result<u16> {
    match family {
        None => Ok(AF_UNSPEC),
        Some(4) => Ok(AF_INET),
        Some(6) => Ok(AF_INET6),
        Some(f) => anyhow::bail!("--family {f}: use 4 or 6"),
    }
}

/// A driver error with its status name (e.g. `STATUS_NO_MATCH (0xC0000272)`).
fn describe(e: crate::client::Error) -> anyhow::Error {
    match e.status() {
        Some(s) => anyhow::anyhow!("{}", NtStatus(s)),
        None => anyhow::Error::new(e),
    }
}

/// Runs `wskctl resolve`: one address per line (forward) or the name (reverse).
///
/// Errors: `resolve NAME: STATUS_NO_MATCH (0xC0000272)` when the name cannot be resolved,
/// other driver statuses, or a `--reverse` argument that is not an IP address.
pub fn command(
    client: &Client<'_>,
    args: &ResolveArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let what = format!("resolve {}", args.name);
    if args.reverse {
        let ip: IpAddr = args
            .name
            .parse()
            .map_err(|e| anyhow::anyhow!("{what}: --reverse needs an IP address: {e}"))?;
        let name = client
            .resolve_reverse(SocketAddr::new(ip, 0))
            .map_err(|e| describe(e).context(what.clone()))?;
        if args.json {
            let j = ReverseJson {
                address: &args.name,
                name: &name,
            };
            serde_json::to_writer_pretty(&mut *out, &j)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{name}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let family = family_hint(args.family)?;
    let r = client
        .resolve(&args.name, 0, family)
        .map_err(|e| describe(e).context(what.clone()))?;
    let (addresses, total) = match r {
        Resolved::Addresses { addresses, total } => (addresses, total),
        Resolved::Name(_) => anyhow::bail!("{what}: the driver answered with a name"),
    };
    if args.json {
        let j = ForwardJson {
            name: &args.name,
            addresses: addresses.iter().map(|a| a.ip().to_string()).collect(),
            total,
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        for a in &addresses {
            writeln!(out, "{}", a.ip())?;
        }
        if total as usize > addresses.len() {
            writeln!(
                out,
                "({} more not returned)",
                total as usize - addresses.len()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_hints() {
        assert_eq!(family_hint(None).unwrap(), AF_UNSPEC);
        assert_eq!(family_hint(Some(4)).unwrap(), AF_INET);
        assert_eq!(family_hint(Some(6)).unwrap(), AF_INET6);
        assert!(family_hint(Some(5)).is_err());
    }

    #[test]
    fn no_match_is_named() {
        let e = crate::client::Error::Status {
            operation: wskclient_ioctl::Operation::Resolve,
            status: wskclient_ioctl::status::STATUS_NO_MATCH,
        };
        assert_eq!(describe(e).to_string(), "STATUS_NO_MATCH (0xC0000272)");
    }
}
