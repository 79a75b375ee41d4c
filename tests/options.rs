//! SET_OPTION / GET_OPTION through the loaded driver (user handle -> IRP -> device core ->
//! wsk -> WskControlSocket), against a real TCP peer, both completion paths; bad inputs with
//! their NTSTATUS; 0 leaks and 0 violations after unload.

use std::net::{SocketAddr, TcpListener};

use ntsim::iomgr::{self, UserHandle};

#[macro_use]
mod frontend;
use frontend::Frontend;
use wskclient_ioctl::options::*;
use wskclient_ioctl::status::*;
use wskclient_ioctl::*;
use zerocopy::{FromBytes, IntoBytes};

fn get(h: &UserHandle, handle: SocketHandle, option: u32) -> Result<u32, i32> {
    let mut out = [0u8; 16];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_GET_OPTION,
        GetOptionRequest::new(handle, option).as_bytes(),
        &mut out,
    );
    if s.status != STATUS_SUCCESS {
        return Err(s.status);
    }
    assert_eq!(s.information, 16);
    Ok(GetOptionResponse::read_from_bytes(&out).unwrap().value)
}

fn set(h: &UserHandle, handle: SocketHandle, option: u32, value: u32) -> i32 {
    h.device_io_control(
        IOCTL_WSKCLIENT_SET_OPTION,
        SetOptionRequest::new(handle, option, value).as_bytes(),
        &mut [],
    )
    .status
}

fn run(fe: Frontend, mode: ntsim::config::CompletionMode, at: &str) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
    let peer = TcpListener::bind(at).unwrap();
    let to: SocketAddr = peer.local_addr().unwrap();
    {
        let h = iomgr::open(USER_PATH).expect("open");
        let mut out = [0u8; 72];
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_OPEN_STREAM,
            OpenStreamRequest::new(&to, None).as_bytes(),
            &mut out,
        );
        assert_eq!(s.status, STATUS_SUCCESS);
        let handle = OpenStreamResponse::read_from_bytes(&out).unwrap().handle;
        let (_conn, _) = peer.accept().unwrap();
        assert_eq!(get(&h, handle, OPTION_NODELAY), Ok(0));
        assert_eq!(set(&h, handle, OPTION_NODELAY, 1), STATUS_SUCCESS);
        assert_eq!(get(&h, handle, OPTION_NODELAY), Ok(1));
        assert_eq!(set(&h, handle, OPTION_KEEPALIVE, 1), STATUS_SUCCESS);
        assert_eq!(get(&h, handle, OPTION_KEEPALIVE), Ok(1));
        assert_eq!(set(&h, handle, OPTION_SEND_BUFFER, 65536), STATUS_SUCCESS);
        assert_eq!(get(&h, handle, OPTION_SEND_BUFFER), Ok(65536));
        // Bad inputs.
        assert_eq!(set(&h, handle, 99, 1), STATUS_INVALID_PARAMETER);
        assert_eq!(
            set(&h, SocketHandle::new(77, 1).unwrap(), OPTION_NODELAY, 1),
            STATUS_INVALID_HANDLE
        );
        let mut small = [0u8; 15];
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_GET_OPTION,
            GetOptionRequest::new(handle, OPTION_NODELAY).as_bytes(),
            &mut small,
        );
        assert_eq!(s.status, STATUS_BUFFER_TOO_SMALL);
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_SET_OPTION,
            &SetOptionRequest::new(handle, OPTION_NODELAY, 1).as_bytes()[..20],
            &mut [],
        );
        assert_eq!(s.status, STATUS_BUFFER_TOO_SMALL);
    }
    driver.unload().expect("unload");
    scope.assert_clean();
}

fn options_ipv4_pending(fe: Frontend) {
    run(fe, ntsim::config::CompletionMode::Pending, "127.0.0.1:0");
}

fn options_ipv6_inline(fe: Frontend) {
    run(fe, ntsim::config::CompletionMode::Inline, "[::1]:0");
}

// ---------------------------------------------------------------------------------------
// CONNECT_WITH_DATA
// ---------------------------------------------------------------------------------------

use std::io::{Read, Write};
use std::time::Duration;

use wskclient_ioctl::names::*;

/// Bound on every blocking read of a test peer.
const WAIT: Duration = Duration::from_secs(30);

/// Initial data the tests send: 150 distinct-ish bytes (a pattern, so a shifted or
/// truncated copy does not match).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// CONNECT_WITH_DATA through the user handle; the response when it succeeded.
fn connect_with_data(
    h: &UserHandle,
    remote: &SocketAddr,
    local: Option<&SocketAddr>,
    data: &[u8],
) -> Result<ConnectWithDataResponse, i32> {
    let mut input = vec![0u8; MAX_CONNECT_WITH_DATA_INPUT];
    let n = encode_connect_with_data(remote, local, data, &mut input).unwrap();
    raw_connect_with_data(h, &input[..n], 80)
}

fn raw_connect_with_data(
    h: &UserHandle,
    input: &[u8],
    out_len: usize,
) -> Result<ConnectWithDataResponse, i32> {
    let mut out = vec![0u8; out_len];
    let s = h.device_io_control(IOCTL_WSKCLIENT_CONNECT_WITH_DATA, input, &mut out);
    if s.status != STATUS_SUCCESS {
        assert_eq!(s.information, 0);
        return Err(s.status);
    }
    assert_eq!(s.information, 80);
    Ok(parse_response::<ConnectWithDataResponse>(&out[..80]).unwrap())
}

fn read_exact_from(conn: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; n];
    conn.read_exact(&mut buf).unwrap();
    buf
}

fn stats(h: &UserHandle) -> StatsResponse {
    let mut out = [0u8; core::mem::size_of::<StatsResponse>()];
    let s = h.device_io_control(
        IOCTL_WSKCLIENT_QUERY_STATS,
        QueryStatsRequest::new().as_bytes(),
        &mut out,
    );
    assert_eq!(s.status, STATUS_SUCCESS);
    parse_response::<StatsResponse>(&out).unwrap()
}

/// Initial data reaches a real peer byte for byte; the same handle then SENDs, RECEIVEs,
/// DISCONNECTs and CLOSEs; the response's addresses are the connection's (checked at the
/// peer); `connect_ex` false switches the provider's WskConnectEx off, and the fallback
/// (WskConnect + WskSend) must be used and reported.
fn cwd_run(fe: Frontend, mode: ntsim::config::CompletionMode, at: &str, connect_ex: bool) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    ntsim::config::set_connect_ex_implemented(connect_ex);
    let driver = fe.load();
    let peer = TcpListener::bind(at).unwrap();
    let to: SocketAddr = peer.local_addr().unwrap();
    {
        let h = iomgr::open(USER_PATH).expect("open");
        // Wildcard local address; 150 bytes of initial data (72 + 150 bytes of input).
        let data = pattern(150, 1);
        let r = connect_with_data(&h, &to, None, &data).expect("CONNECT_WITH_DATA");
        assert_eq!(r.bytes_sent as usize, data.len());
        assert_eq!(r.used_fallback(), !connect_ex, "fallback flag");
        assert_eq!(r.remote_address.to_socket_addr(), Ok(to));
        let local = r.local_address.to_socket_addr().expect("local address");
        let (mut conn, from) = peer.accept().unwrap();
        assert_eq!(
            from, local,
            "the response's local address is the peer's remote"
        );
        assert_eq!(read_exact_from(&mut conn, data.len()), data, "initial data");
        // SEND on the same handle.
        let more = pattern(1000, 7);
        let mut out = more.clone();
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_SEND,
            SendRequest::new(r.handle).as_bytes(),
            &mut out,
        );
        assert_eq!((s.status, s.information), (STATUS_SUCCESS, more.len()));
        assert_eq!(read_exact_from(&mut conn, more.len()), more, "SEND after");
        // RECEIVE on it.
        conn.write_all(b"pong").unwrap();
        let mut got = Vec::new();
        while got.len() < 4 {
            let mut buf = vec![0u8; 4 - got.len()];
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_RECEIVE,
                ReceiveRequest::new(r.handle).as_bytes(),
                &mut buf,
            );
            assert_eq!(s.status, STATUS_SUCCESS);
            assert!(s.information > 0, "RECEIVE: early end of stream");
            got.extend_from_slice(&buf[..s.information]);
        }
        assert_eq!(got, b"pong");
        // Graceful DISCONNECT: the peer reads the end of the stream.
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_DISCONNECT,
            DisconnectRequest::new(r.handle, false).as_bytes(),
            &mut [],
        );
        assert_eq!(s.status, STATUS_SUCCESS);
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());

        // A specific local address of the remote's family, and no initial data.
        let mut any_port = to;
        any_port.set_port(0);
        let r2 = connect_with_data(&h, &to, Some(&any_port), &[]).expect("bound, no data");
        assert_eq!(r2.bytes_sent, 0);
        let local2 = r2.local_address.to_socket_addr().unwrap();
        assert_eq!(local2.ip(), to.ip());
        let (_conn2, from2) = peer.accept().unwrap();
        assert_eq!(from2, local2);

        let st = stats(&h);
        assert_eq!(st.connects, 2);
        assert_eq!(st.connect_fallbacks, if connect_ex { 0 } else { 2 });
        assert_eq!(st.bytes_sent, (data.len() + more.len()) as u64);
        assert_eq!(st.live_sockets, 2);
        for handle in [r.handle, r2.handle] {
            let s = h.device_io_control(
                IOCTL_WSKCLIENT_CLOSE,
                CloseRequest::new(handle).as_bytes(),
                &mut [],
            );
            assert_eq!(s.status, STATUS_SUCCESS);
        }
        assert_eq!(stats(&h).live_sockets, 0);

        // Refused: nobody listens on a port that was just released.
        let gone = {
            let l = TcpListener::bind(at).unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(
            connect_with_data(&h, &gone, None, b"x"),
            Err(STATUS_CONNECTION_REFUSED)
        );
        assert_eq!(
            stats(&h).live_sockets,
            0,
            "a failed connect leaves no socket"
        );
    }
    driver.unload().expect("unload");
    scope.assert_clean();
}

fn connect_with_data_ipv4_pending(fe: Frontend) {
    cwd_run(
        fe,
        ntsim::config::CompletionMode::Pending,
        "127.0.0.1:0",
        true,
    );
}

fn connect_with_data_ipv6_inline(fe: Frontend) {
    cwd_run(fe, ntsim::config::CompletionMode::Inline, "[::1]:0", true);
}

fn connect_with_data_ipv4_inline(fe: Frontend) {
    cwd_run(
        fe,
        ntsim::config::CompletionMode::Inline,
        "127.0.0.1:0",
        true,
    );
}

fn connect_with_data_ipv6_pending(fe: Frontend) {
    cwd_run(fe, ntsim::config::CompletionMode::Pending, "[::1]:0", true);
}

fn connect_with_data_fallback_ipv4_pending(fe: Frontend) {
    cwd_run(
        fe,
        ntsim::config::CompletionMode::Pending,
        "127.0.0.1:0",
        false,
    );
}

fn connect_with_data_fallback_ipv6_inline(fe: Frontend) {
    cwd_run(fe, ntsim::config::CompletionMode::Inline, "[::1]:0", false);
}

/// Malformed CONNECT_WITH_DATA requests fail with the contract's statuses and open nothing.
fn connect_with_data_bad_inputs(fe: Frontend) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    let driver = fe.load();
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let to: SocketAddr = peer.local_addr().unwrap();
    {
        let h = iomgr::open(USER_PATH).expect("open");
        let mut good = vec![0u8; 72 + 3];
        encode_connect_with_data(&to, None, b"abc", &mut good).unwrap();
        // Data shorter than data_length; fixed part cut; trailing byte.
        assert_eq!(
            raw_connect_with_data(&h, &good[..74], 80),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        assert_eq!(
            raw_connect_with_data(&h, &good[..60], 80),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            raw_connect_with_data(&h, &long, 80),
            Err(STATUS_INVALID_BUFFER_SIZE)
        );
        // The codes docs/ioctl.md gives.
        assert_eq!(IOCTL_WSKCLIENT_SET_OPTION, 0x8A57_A018);
        assert_eq!(IOCTL_WSKCLIENT_GET_OPTION, 0x8A57_601C);
        assert_eq!(IOCTL_WSKCLIENT_CONNECT_WITH_DATA, 0x8A57_E020);
        assert_eq!(IOCTL_WSKCLIENT_RESOLVE, 0x8A57_60C0);
        // data_length over the WskConnectEx limit (65,535), the same limit as wsk's.
        assert_eq!(MAX_CONNECT_DATA_BYTES, wsk::control::MAX_CONNECT_EX_BYTES);
        let mut big = good[..72].to_vec();
        big[64..68].copy_from_slice(&65_536u32.to_ne_bytes());
        assert_eq!(
            raw_connect_with_data(&h, &big, 80),
            Err(STATUS_INVALID_BUFFER_SIZE)
        );
        // Output too small for the 80-byte response: nothing is connected.
        assert_eq!(
            raw_connect_with_data(&h, &good, 79),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        // Families: AF_UNSPEC remote; local IPv6 with an IPv4 remote.
        let mut unspec = good.clone();
        unspec[8..36].fill(0);
        assert_eq!(
            raw_connect_with_data(&h, &unspec, 80),
            Err(STATUS_INVALID_ADDRESS_COMPONENT)
        );
        let v6: SocketAddr = "[::1]:0".parse().unwrap();
        assert_eq!(
            connect_with_data(&h, &to, Some(&v6), b"abc"),
            Err(STATUS_INVALID_PARAMETER)
        );
        // Reserved field, header flags, version.
        let mut r = good.clone();
        r[68] = 1;
        assert_eq!(
            raw_connect_with_data(&h, &r, 80),
            Err(STATUS_INVALID_PARAMETER)
        );
        let mut f = good.clone();
        f[4] = 1;
        assert_eq!(
            raw_connect_with_data(&h, &f, 80),
            Err(STATUS_INVALID_PARAMETER)
        );
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(
            raw_connect_with_data(&h, &v, 80),
            Err(STATUS_REVISION_MISMATCH)
        );
        let st = stats(&h);
        assert_eq!((st.connects, st.live_sockets), (0, 0));
        peer.set_nonblocking(true).unwrap();
        assert!(peer.accept().is_err(), "no connection was made");
    }
    driver.unload().expect("unload");
    scope.assert_clean();
}

// ---------------------------------------------------------------------------------------
// RESOLVE
// ---------------------------------------------------------------------------------------

/// RESOLVE through the user handle with an output buffer of `out_len` bytes; the raw
/// status, and the written bytes on success.
fn raw_resolve(h: &UserHandle, input: &[u8], out_len: usize) -> Result<Vec<u8>, i32> {
    let mut out = vec![0u8; out_len];
    let s = h.device_io_control(IOCTL_WSKCLIENT_RESOLVE, input, &mut out);
    if s.status != STATUS_SUCCESS {
        assert_eq!(s.information, 0);
        return Err(s.status);
    }
    out.truncate(s.information);
    Ok(out)
}

fn forward_input(name: &str, port: u16, family: u16) -> Vec<u8> {
    let mut input = vec![0u8; MAX_RESOLVE_INPUT];
    let n = encode_resolve_forward(name, port, family, &mut input).unwrap();
    input.truncate(n);
    input
}

/// Forward query: (addresses, total).
fn forward(h: &UserHandle, name: &str, port: u16, family: u16) -> Result<Vec<SocketAddr>, i32> {
    let out = raw_resolve(h, &forward_input(name, port, family), MAX_RESOLVE_OUTPUT)?;
    let reply = parse_resolve_response(&out).unwrap();
    assert_eq!(reply.response.count, reply.response.total);
    Ok(reply.addresses().map(|a| a.unwrap()).collect())
}

fn reverse(h: &UserHandle, addr: SocketAddr) -> Result<String, i32> {
    let out = raw_resolve(
        h,
        ResolveRequest::reverse(&addr).as_bytes(),
        MAX_RESOLVE_OUTPUT,
    )?;
    Ok(parse_resolve_response(&out)
        .unwrap()
        .name()
        .unwrap()
        .to_string())
}

fn resolve_run(fe: Frontend, mode: ntsim::config::CompletionMode) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
    {
        let h = iomgr::open(USER_PATH).expect("open");
        // "localhost": loopback addresses only, at least one; with a port, every address
        // carries it.
        let local = forward(&h, "localhost", 0, AF_UNSPEC).expect("localhost");
        assert!(!local.is_empty());
        assert!(local.iter().all(|a| a.ip().is_loopback()), "{local:?}");
        let with_port = forward(&h, "localhost", 8080, AF_UNSPEC).unwrap();
        assert_eq!(with_port.len(), local.len());
        assert!(with_port.iter().all(|a| a.port() == 8080));
        let v4 = forward(&h, "localhost", 0, AF_INET).unwrap();
        assert!(v4.iter().all(|a| a.is_ipv4()) && !v4.is_empty());
        // Numeric IPv4 and IPv6 forms come back as themselves.
        assert_eq!(
            forward(&h, "127.0.0.1", 0, AF_UNSPEC),
            Ok(vec!["127.0.0.1:0".parse().unwrap()])
        );
        assert_eq!(
            forward(&h, "::1", 443, AF_UNSPEC),
            Ok(vec!["[::1]:443".parse().unwrap()])
        );
        assert_eq!(
            forward(&h, "::1", 0, AF_INET6),
            Ok(vec!["[::1]:0".parse().unwrap()])
        );
        // Reverse of 127.0.0.1: a name that resolves back to 127.0.0.1 (the host's own
        // name for it; "localhost" on a usual /etc/hosts).
        let name = reverse(&h, "127.0.0.1:0".parse().unwrap()).expect("reverse 127.0.0.1");
        assert!(!name.is_empty());
        let back = forward(&h, &name, 0, AF_INET).unwrap();
        assert!(
            back.contains(&"127.0.0.1:0".parse().unwrap()),
            "{name} -> {back:?}"
        );
        // Unresolvable: STATUS_NO_MATCH, "The host name cannot be resolved",
        // https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info
        // (.invalid never resolves: RFC 2606 section 2).
        assert_eq!(
            forward(&h, "no-such-host.invalid", 0, AF_UNSPEC),
            Err(STATUS_NO_MATCH)
        );
        // An output buffer with room for the fixed part only: count 0, total says more.
        let out = raw_resolve(&h, &forward_input("127.0.0.1", 0, AF_UNSPEC), 24).unwrap();
        let reply = parse_resolve_response(&out).unwrap();
        assert_eq!((reply.response.count, reply.response.total), (0, 1));
        // Bad inputs.
        assert_eq!(
            raw_resolve(&h, &forward_input("localhost", 0, AF_UNSPEC), 23),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        assert_eq!(
            raw_resolve(&h, ResolveRequest::forward(0, 0, AF_UNSPEC).as_bytes(), 100),
            Err(STATUS_INVALID_PARAMETER)
        );
        let mut bad = forward_input("localhost", 0, AF_UNSPEC);
        bad[56] = 0xC0; // not UTF-8
        assert_eq!(raw_resolve(&h, &bad, 100), Err(STATUS_INVALID_PARAMETER));
        let mut bad = forward_input("localhost", 0, AF_UNSPEC);
        bad[8] = 9; // mode
        assert_eq!(raw_resolve(&h, &bad, 100), Err(STATUS_INVALID_PARAMETER));
        let bad = forward_input("localhost", 0, 10); // Linux AF_INET6
        assert_eq!(
            raw_resolve(&h, &bad, 100),
            Err(STATUS_INVALID_ADDRESS_COMPONENT)
        );
        let bad = forward_input("localhost", 0, AF_UNSPEC);
        assert_eq!(
            raw_resolve(&h, &bad[..bad.len() - 1], 100),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        let mut too_long = ResolveRequest::forward(256, 0, AF_UNSPEC)
            .as_bytes()
            .to_vec();
        too_long.extend_from_slice(&[b'a'; 100]);
        assert_eq!(
            raw_resolve(&h, &too_long, 100),
            Err(STATUS_INVALID_BUFFER_SIZE)
        );
        let mut rev = ResolveRequest::reverse(&"127.0.0.1:0".parse().unwrap());
        rev.address = InetAddress::UNSPECIFIED;
        assert_eq!(
            raw_resolve(&h, rev.as_bytes(), 100),
            Err(STATUS_INVALID_ADDRESS_COMPONENT)
        );
        // Reverse answer larger than the output: nothing written.
        let rev = ResolveRequest::reverse(&"127.0.0.1:0".parse().unwrap());
        assert_eq!(
            raw_resolve(&h, rev.as_bytes(), 24 + name.len() - 1),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
    }
    driver.unload().expect("unload");
    scope.assert_clean();
}

fn resolve_pending(fe: Frontend) {
    resolve_run(fe, ntsim::config::CompletionMode::Pending);
}

fn resolve_inline(fe: Frontend) {
    resolve_run(fe, ntsim::config::CompletionMode::Inline);
}

// ---------------------------------------------------------------------------------------
// Inputs above the front-end's 256-byte fixed copy: 65,535 bytes of initial data, 255-byte
// names. They need the WDM/KMDF large-input path for CONNECT_WITH_DATA and RESOLVE
// (MAX_CONNECT_WITH_DATA_INPUT, MAX_RESOLVE_INPUT), as TRANSMIT_* have it.
// ---------------------------------------------------------------------------------------

fn cwd_max_run(fe: Frontend, mode: ntsim::config::CompletionMode, at: &str) {
    ntsim::link();
    let scope = ntsim::Scope::begin();
    ntsim::config::set_completion_mode(mode);
    let driver = fe.load();
    let peer = TcpListener::bind(at).unwrap();
    let to: SocketAddr = peer.local_addr().unwrap();
    {
        let h = iomgr::open(USER_PATH).expect("open");
        let data = pattern(MAX_CONNECT_DATA_BYTES, 3);
        let r = connect_with_data(&h, &to, None, &data).expect("CONNECT_WITH_DATA 65,535");
        assert_eq!(r.bytes_sent as usize, MAX_CONNECT_DATA_BYTES);
        let (mut conn, _) = peer.accept().unwrap();
        assert_eq!(read_exact_from(&mut conn, data.len()), data);
        let s = h.device_io_control(
            IOCTL_WSKCLIENT_CLOSE,
            CloseRequest::new(r.handle).as_bytes(),
            &mut [],
        );
        assert_eq!(s.status, STATUS_SUCCESS);
        // One byte more than the limit, sent whole: refused before any connect.
        let mut input = vec![0u8; MAX_CONNECT_WITH_DATA_INPUT + 1];
        input[..72].copy_from_slice(
            ConnectWithDataRequest::new(&to, None, MAX_CONNECT_DATA_BYTES as u32 + 1).as_bytes(),
        );
        assert_eq!(
            raw_connect_with_data(&h, &input, 80),
            Err(STATUS_INVALID_BUFFER_SIZE)
        );
        // A 255-byte name is a valid request (it resolves to nothing); 200 and 255 bytes
        // both cross the 256-byte copy.
        for len in [200, MAX_RESOLVE_NAME_BYTES] {
            let name = format!("{}.invalid", "a".repeat(len - 8));
            assert_eq!(name.len(), len);
            assert_eq!(
                forward(&h, &name, 0, AF_UNSPEC),
                Err(STATUS_NO_MATCH),
                "{len}"
            );
        }
        assert_eq!(stats(&h).live_sockets, 0);
    }
    driver.unload().expect("unload");
    scope.assert_clean();
}

fn large_inputs_ipv4_pending(fe: Frontend) {
    cwd_max_run(fe, ntsim::config::CompletionMode::Pending, "127.0.0.1:0");
}

fn large_inputs_ipv6_inline(fe: Frontend) {
    cwd_max_run(fe, ntsim::config::CompletionMode::Inline, "[::1]:0");
}

both_frontends!(
    options_ipv4_pending,
    options_ipv6_inline,
    connect_with_data_ipv4_pending,
    connect_with_data_ipv6_inline,
    connect_with_data_ipv4_inline,
    connect_with_data_ipv6_pending,
    connect_with_data_fallback_ipv4_pending,
    connect_with_data_fallback_ipv6_inline,
    connect_with_data_bad_inputs,
    resolve_pending,
    resolve_inline,
    large_inputs_ipv4_pending,
    large_inputs_ipv6_inline,
);
