//! Socket options on `wskctl connect` (`--nodelay`, `--keepalive`, `--rcvbuf N`,
//! `--sndbuf N`: SET_OPTION, then read back with GET_OPTION and printed), and
//! `wskctl connect-ex ADDR --data TEXT|@FILE` (CONNECT_WITH_DATA: connect and send the
//! initial data in one request, `WskConnectEx` in the driver).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use wskclient_ioctl::options::{
    MAX_CONNECT_DATA_BYTES, OPTION_KEEPALIVE, OPTION_NODELAY, OPTION_RECEIVE_BUFFER,
    OPTION_SEND_BUFFER,
};
use wskclient_ioctl::SocketHandle;

use crate::client::Client;

/// Socket options `connect` sets before it sends.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct SocketOptionArgs {
    /// Disable Nagle coalescing (TCP_NODELAY = 1).
    #[arg(long)]
    pub nodelay: bool,
    /// Enable TCP keep-alive probes (SO_KEEPALIVE = 1).
    #[arg(long)]
    pub keepalive: bool,
    /// Receive buffer size in bytes (SO_RCVBUF).
    #[arg(long, value_name = "BYTES")]
    pub rcvbuf: Option<u32>,
    /// Send buffer size in bytes (SO_SNDBUF).
    #[arg(long, value_name = "BYTES")]
    pub sndbuf: Option<u32>,
}

impl SocketOptionArgs {
    /// The (contract option id, name, value) triples asked for, in a fixed order.
    pub fn requested(&self) -> Vec<(u32, &'static str, u32)> {
        let mut v = Vec::new();
        if self.nodelay {
            v.push((OPTION_NODELAY, "TCP_NODELAY", 1));
        }
        if self.keepalive {
            v.push((OPTION_KEEPALIVE, "SO_KEEPALIVE", 1));
        }
        if let Some(n) = self.rcvbuf {
            v.push((OPTION_RECEIVE_BUFFER, "SO_RCVBUF", n));
        }
        if let Some(n) = self.sndbuf {
            v.push((OPTION_SEND_BUFFER, "SO_SNDBUF", n));
        }
        v
    }
}

/// Sets each requested option on `handle` with SET_OPTION, reads it back with GET_OPTION,
/// and prints one line per option: `option TCP_NODELAY = 1`. The value read back is the
/// stack's (it may differ from the one set, e.g. a rounded buffer size).
///
/// Errors: the first failing SET_OPTION / GET_OPTION, with the option's name as context.
pub fn apply(
    client: &Client<'_>,
    handle: SocketHandle,
    options: &SocketOptionArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for (id, name, value) in options.requested() {
        client
            .set_option(handle, id, value)
            .with_context(|| format!("set_option {name}={value}"))?;
        let read = client
            .get_option(handle, id)
            .with_context(|| format!("get_option {name}"))?;
        writeln!(out, "option {name} = {read}")?;
    }
    Ok(())
}

/// `connect-ex` arguments.
#[derive(Debug, Args)]
pub struct ConnectExArgs {
    /// Remote HOST:PORT (names resolved here, in user mode).
    #[arg(value_parser = crate::cli::parse_target)]
    pub target: SocketAddr,
    /// Initial data: text, or `@PATH` for a file's bytes (at most 65,535 bytes).
    #[arg(long)]
    pub data: String,
}

/// The bytes `--data` names: the text itself, or the contents of the file after `@`.
///
/// Errors: the file cannot be read; more than [`MAX_CONNECT_DATA_BYTES`] bytes.
pub fn initial_data(spec: &str) -> anyhow::Result<Vec<u8>> {
    let data = match spec.strip_prefix('@') {
        Some(path) => {
            let path = PathBuf::from(path);
            std::fs::read(&path).with_context(|| format!("read {}", path.display()))?
        }
        None => spec.as_bytes().to_vec(),
    };
    anyhow::ensure!(
        data.len() <= MAX_CONNECT_DATA_BYTES,
        "--data: {} bytes, at most {MAX_CONNECT_DATA_BYTES} fit in the connect",
        data.len()
    );
    Ok(data)
}

/// `wskctl connect-ex`: CONNECT_WITH_DATA, print bytes sent and both addresses (and whether
/// the driver fell back to connect + send), then CLOSE.
///
/// Errors: `connect-ex TARGET: STATUS_...` from the driver, or the data's errors.
pub fn command(
    client: &Client<'_>,
    args: &ConnectExArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let target = args.target;
    let data = initial_data(&args.data)?;
    let c = client
        .connect_with_data(target, None, &data)
        .with_context(|| format!("connect-ex {target}"))?;
    client
        .close(c.socket.handle)
        .with_context(|| format!("close {target}"))?;
    writeln!(
        out,
        "connect-ex: sent {} bytes with the connect from {} to {}{}",
        c.bytes_sent,
        c.socket
            .local
            .map_or_else(|| "(local address unknown)".to_string(), |a| a.to_string()),
        c.socket.remote,
        if c.used_fallback {
            " (fallback: connect, then send)"
        } else {
            ""
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_options_in_order() {
        let o = SocketOptionArgs {
            nodelay: true,
            keepalive: false,
            rcvbuf: Some(1000),
            sndbuf: Some(2000),
        };
        assert_eq!(
            o.requested(),
            vec![
                (OPTION_NODELAY, "TCP_NODELAY", 1),
                (OPTION_RECEIVE_BUFFER, "SO_RCVBUF", 1000),
                (OPTION_SEND_BUFFER, "SO_SNDBUF", 2000),
            ]
        );
        assert!(SocketOptionArgs::default().requested().is_empty());
    }

    #[test]
    fn initial_data_text_file_and_limit() {
        assert_eq!(initial_data("hello").unwrap(), b"hello");
        let dir = std::env::temp_dir().join(format!("wskctl-cx-{}", std::process::id()));
        std::fs::write(&dir, b"\x00\x01file").unwrap();
        let spec = format!("@{}", dir.display());
        assert_eq!(initial_data(&spec).unwrap(), b"\x00\x01file");
        std::fs::write(&dir, vec![0u8; MAX_CONNECT_DATA_BYTES + 1]).unwrap();
        assert!(initial_data(&spec).is_err());
        std::fs::remove_file(&dir).unwrap();
        assert!(initial_data("@/nonexistent/wskctl").is_err());
    }
}
