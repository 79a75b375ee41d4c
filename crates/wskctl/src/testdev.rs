//! Test double: a [`Device`] that implements the IOCTL contract on host
//! sockets (std::net), validating requests exactly as the driver must. For this
//! crate's tests only.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use wskclient_ioctl::status::*;
use wskclient_ioctl::{
    check_data_length, parse_request, write_response, CloseRequest, ContractError,
    OpenDatagramRequest, OpenDatagramResponse, OpenStreamRequest, OpenStreamResponse, Operation,
    QueryStatsRequest, SendRequest, SendToRequest, SetRemoteRequest, SocketHandle, StatsResponse,
};

use crate::device::{Device, IoStatus};

enum Sock {
    Stream(TcpStream),
    Datagram {
        socket: UdpSocket,
        remote: Option<SocketAddr>,
    },
}

struct Slot {
    generation: u32,
    socket: Option<Sock>,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    stats: Option<StatsResponse>,
}

/// The fake device; one instance = one file object.
#[derive(Default)]
pub struct FakeDevice {
    state: Mutex<State>,
}

fn io_status(error: &io::Error) -> i32 {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => STATUS_CONNECTION_REFUSED,
        io::ErrorKind::ConnectionReset => STATUS_CONNECTION_RESET,
        io::ErrorKind::TimedOut => STATUS_IO_TIMEOUT,
        io::ErrorKind::AddrInUse => STATUS_ADDRESS_ALREADY_EXISTS,
        _ => STATUS_UNSUCCESSFUL,
    }
}

type Outcome = Result<usize, i32>;

impl State {
    fn insert(&mut self, socket: Sock) -> SocketHandle {
        let slot = match self.slots.iter().position(|s| s.socket.is_none()) {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    socket: None,
                });
                self.slots.len() - 1
            }
        };
        let entry = &mut self.slots[slot];
        entry.generation = SocketHandle::next_generation(entry.generation);
        entry.socket = Some(socket);
        SocketHandle::new(slot as u32, entry.generation).expect("slot and generation are valid")
    }

    fn lookup(&mut self, handle: SocketHandle) -> Result<&mut Sock, ContractError> {
        let slot = handle.slot().ok_or(ContractError::InvalidHandle)? as usize;
        match self.slots.get_mut(slot) {
            Some(Slot {
                generation,
                socket: Some(socket),
            }) if *generation == handle.generation() => Ok(socket),
            _ => Err(ContractError::InvalidHandle),
        }
    }

    fn stats(&mut self) -> &mut StatsResponse {
        self.stats.get_or_insert_with(StatsResponse::new)
    }

    fn dispatch(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Outcome {
        let operation = Operation::from_code(code)
            .ok_or(ContractError::UnknownIoctl { code })
            .map_err(|e| e.ntstatus())?;
        let contract = |e: ContractError| e.ntstatus();
        match operation {
            Operation::OpenStream => {
                let request: OpenStreamRequest = parse_request(input).map_err(contract)?;
                if output.len() < size_of::<OpenStreamResponse>() {
                    return Err(STATUS_BUFFER_TOO_SMALL);
                }
                let remote = request.remote_address.to_socket_addr().map_err(contract)?;
                let stream = TcpStream::connect_timeout(&remote, Duration::from_secs(10))
                    .map_err(|e| io_status(&e))?;
                let local = stream.local_addr().map_err(|e| io_status(&e))?;
                let handle = self.insert(Sock::Stream(stream));
                self.stats().connects += 1;
                let response = OpenStreamResponse::new(handle, local.into(), remote.into());
                write_response(output, &response).map_err(contract)
            }
            Operation::Send => {
                let request: SendRequest = parse_request(input).map_err(contract)?;
                check_data_length(operation, output.len()).map_err(contract)?;
                let Sock::Stream(stream) = self.lookup(request.handle).map_err(contract)? else {
                    return Err(ContractError::WrongSocketKind.ntstatus());
                };
                stream.write_all(output).map_err(|e| io_status(&e))?;
                let stats = self.stats();
                stats.sends += 1;
                stats.bytes_sent += output.len() as u64;
                Ok(output.len())
            }
            // The server-side and receive operations are not modelled by this test double;
            // they are tested through the driver core (tests/server.rs).
            Operation::OpenListen
            | Operation::Accept
            | Operation::Receive
            | Operation::Disconnect
            | Operation::ReceiveFrom
            | Operation::SetOption
            | Operation::GetOption
            | Operation::ConnectWithData
            | Operation::Resolve
            | Operation::TransmitFile
            | Operation::TransmitPackets => Err(STATUS_NOT_SUPPORTED),
            Operation::OpenDatagram => {
                let request: OpenDatagramRequest = parse_request(input).map_err(contract)?;
                if output.len() < size_of::<OpenDatagramResponse>() {
                    return Err(STATUS_BUFFER_TOO_SMALL);
                }
                let local = request.local_address.to_socket_addr().map_err(contract)?;
                let socket = UdpSocket::bind(local).map_err(|e| io_status(&e))?;
                let bound = socket.local_addr().map_err(|e| io_status(&e))?;
                let handle = self.insert(Sock::Datagram {
                    socket,
                    remote: None,
                });
                write_response(output, &OpenDatagramResponse::new(handle, bound.into()))
                    .map_err(contract)
            }
            Operation::SetRemote => {
                let request: SetRemoteRequest = parse_request(input).map_err(contract)?;
                let new_remote = request.remote_address.to_optional().map_err(contract)?;
                let Sock::Datagram { remote, .. } =
                    self.lookup(request.handle).map_err(contract)?
                else {
                    return Err(ContractError::WrongSocketKind.ntstatus());
                };
                *remote = new_remote;
                Ok(0)
            }
            Operation::SendTo => {
                let request: SendToRequest = parse_request(input).map_err(contract)?;
                check_data_length(operation, output.len()).map_err(contract)?;
                let to = request.remote_address.to_optional().map_err(contract)?;
                let Sock::Datagram { socket, remote } =
                    self.lookup(request.handle).map_err(contract)?
                else {
                    return Err(ContractError::WrongSocketKind.ntstatus());
                };
                let to = to.or(*remote).ok_or(STATUS_INVALID_DEVICE_STATE)?;
                let n = socket.send_to(output, to).map_err(|e| io_status(&e))?;
                let stats = self.stats();
                stats.datagrams_sent += 1;
                stats.datagram_bytes_sent += n as u64;
                Ok(n)
            }
            Operation::Close => {
                let request: CloseRequest = parse_request(input).map_err(contract)?;
                self.lookup(request.handle).map_err(contract)?;
                let slot = request.handle.slot().expect("looked up") as usize;
                self.slots[slot].socket = None;
                self.stats().closes += 1;
                Ok(0)
            }
            Operation::QueryStats => {
                let _: QueryStatsRequest = parse_request(input).map_err(contract)?;
                let live = self.slots.iter().filter(|s| s.socket.is_some()).count() as u32;
                let stats = self.stats();
                stats.live_sockets = live;
                stats.open_files = 1;
                let stats = *stats;
                write_response(output, &stats).map_err(contract)
            }
        }
    }
}

impl Device for FakeDevice {
    fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        let mut state = self.state.lock().expect("fake device lock");
        match state.dispatch(code, input, output) {
            Ok(information) => IoStatus {
                status: STATUS_SUCCESS,
                information,
            },
            Err(status) => {
                state.stats().failed_requests += 1;
                IoStatus {
                    status,
                    information: 0,
                }
            }
        }
    }
}

/// A device whose every request fails with one status.
pub struct FailingDevice(pub i32);

impl Device for FailingDevice {
    fn ioctl(&self, _code: u32, _input: &[u8], _output: &mut [u8]) -> IoStatus {
        IoStatus {
            status: self.0,
            information: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{run, Cli};
    use crate::client::{Client, Error};
    use crate::demo::{self, DemoOptions};
    use crate::receiver::{TcpReceiver, UdpReceiver};
    use clap::Parser;
    use std::net::TcpListener;
    use zerocopy::IntoBytes;

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn client_round_trip_on_the_fake() {
        let device = FakeDevice::default();
        let client = Client::new(&device);
        let rx = TcpReceiver::bind("127.0.0.1:0".parse().unwrap(), T, T).unwrap();
        let socket = client.open_stream(rx.local_addr()).unwrap();
        assert_eq!(socket.remote, rx.local_addr());
        assert_eq!(client.send(socket.handle, b"hello").unwrap(), 5);
        client.close(socket.handle).unwrap();
        let report = rx.wait(T).unwrap();
        assert_eq!(report.bytes, 5);
        assert_eq!(Some(report.peer), socket.local);
        // The handle is stale now.
        let err = client.send(socket.handle, b"x").unwrap_err();
        assert_eq!(err.status(), Some(STATUS_INVALID_HANDLE));
        assert_eq!(err.to_string(), "STATUS_INVALID_HANDLE (0xC0000008)");
        let stats = client.stats().unwrap();
        assert_eq!((stats.connects, stats.sends, stats.bytes_sent), (1, 1, 5));
        assert_eq!(stats.closes, 1);
        assert_eq!(stats.live_sockets, 0);
        assert_eq!(stats.failed_requests, 1);
    }

    #[test]
    fn connection_refused_is_reported_with_its_name() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The listener is gone: connecting is refused.
        let device = FakeDevice::default();
        let cli = Cli::try_parse_from([
            "wskctl",
            "connect",
            &format!("127.0.0.1:{port}"),
            "--text",
            "x",
        ])
        .unwrap();
        let error = run(&device, &cli.command, &mut Vec::new()).unwrap_err();
        assert_eq!(
            format!("wskctl: {error:#}"),
            format!("wskctl: connect 127.0.0.1:{port}: STATUS_CONNECTION_REFUSED (0xC0000236)")
        );
    }

    #[test]
    fn wrong_kind_and_zero_length() {
        let device = FakeDevice::default();
        let client = Client::new(&device);
        let dgram = client
            .open_datagram("127.0.0.1:0".parse().unwrap())
            .unwrap();
        assert_eq!(
            client.send(dgram.handle, b"x").unwrap_err().status(),
            Some(STATUS_NOT_SUPPORTED)
        );
        assert_eq!(
            client
                .send_to(dgram.handle, None, b"")
                .unwrap_err()
                .status(),
            Some(STATUS_INVALID_PARAMETER)
        );
        // No fixed remote yet: WSK's status passes through (here the fake's choice).
        assert!(client.send_to(dgram.handle, None, b"12345678").is_err());
        // Unknown IOCTL.
        let io = device.ioctl(wskclient_ioctl::IOCTL_WSKCLIENT_CLOSE ^ 0x4, &[], &mut []);
        assert_eq!(io.status, STATUS_INVALID_DEVICE_REQUEST);
        // Oversized input.
        let mut input = wskclient_ioctl::CloseRequest::new(dgram.handle)
            .as_bytes()
            .to_vec();
        input.push(0);
        let io = device.ioctl(wskclient_ioctl::IOCTL_WSKCLIENT_CLOSE, &input, &mut []);
        assert_eq!(io.status, STATUS_INVALID_BUFFER_SIZE);
        client.close(dgram.handle).unwrap();
    }

    #[test]
    fn errors_name_unknown_statuses_too() {
        let device = FailingDevice(0x1234_5678);
        let err = Client::new(&device).stats().unwrap_err();
        assert!(matches!(err, Error::Status { .. }));
        assert_eq!(err.to_string(), "NTSTATUS 0x12345678");
        let device = FailingDevice(STATUS_CONNECTION_REFUSED);
        let err = Client::new(&device)
            .open_stream("127.0.0.1:9".parse().unwrap())
            .unwrap_err();
        assert_eq!(err.to_string(), "STATUS_CONNECTION_REFUSED (0xC0000236)");
    }

    #[test]
    fn sendto_command_fixed_and_explicit() {
        let device = FakeDevice::default();
        for fixed in [false, true] {
            let rx = UdpReceiver::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let target = rx.local_addr().to_string();
            let mut args = vec![
                "wskctl", "sendto", &target, "--count", "20", "--size", "100",
            ];
            if fixed {
                args.push("--fixed-remote");
            }
            let cli = Cli::try_parse_from(args).unwrap();
            let mut out = Vec::new();
            run(&device, &cli.command, &mut out).unwrap();
            assert!(rx.wait_for(20, T));
            let report = rx.finish().unwrap();
            assert_eq!((report.valid, report.invalid, report.bytes), (20, 0, 2000));
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("sent 20 datagrams, 2000 bytes"), "{text}");
            assert_eq!(text.contains("fixed remote"), fixed);
        }
    }

    #[test]
    fn connect_command_sends_file_in_chunks() {
        let path = std::env::temp_dir().join(format!("wskctl-test-{}.bin", std::process::id()));
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let rx = TcpReceiver::bind("127.0.0.1:0".parse().unwrap(), T, T).unwrap();
        let target = rx.local_addr().to_string();
        let cli = Cli::try_parse_from([
            "wskctl",
            "connect",
            &target,
            "--file",
            path.to_str().unwrap(),
            "--chunk",
            "30000",
        ])
        .unwrap();
        let device = FakeDevice::default();
        let mut out = Vec::new();
        let outcome = run(&device, &cli.command, &mut out);
        std::fs::remove_file(&path).unwrap();
        outcome.unwrap();
        let report = rx.wait(T).unwrap();
        assert_eq!(report.bytes, 100_000);
        use sha2::Digest;
        assert_eq!(report.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("sent 100000 bytes in 4 sends"), "{text}");
        assert_eq!(Client::new(&device).stats().unwrap().sends, 4);
    }

    #[test]
    fn demo_verifies_everything_on_the_fake() {
        let device = FakeDevice::default();
        let client = Client::new(&device);
        let options = DemoOptions {
            bytes: 1 << 20,
            datagrams: 200,
            ..DemoOptions::default()
        };
        let report = demo::run(&client, &options);
        assert!(report.ok, "{}", report.table());
        let rows: Vec<(&str, &str)> = report
            .results
            .iter()
            .map(|r| (r.operation.as_str(), r.verified.as_str()))
            .collect();
        assert_eq!(rows[0], ("open_stream+send+close", "yes"));
        assert_eq!(report.results[0].bytes, 1 << 20);
        assert!(report.results[0].count >= 17, "varied sizes up to 64 KiB");
        let dgram: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.operation.contains("send_to"))
            .collect();
        assert_eq!(dgram.len(), 2);
        assert!(dgram.iter().all(|r| r.verified == "yes" && r.count == 200));
        let stats = report.results.last().unwrap();
        assert_eq!(stats.operation, "query_stats");
        assert_eq!(stats.verified, "yes");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], true);
        assert_eq!(json["results"][0]["verified"], "yes");
    }

    #[test]
    fn demo_fails_on_a_broken_device() {
        let device = FailingDevice(STATUS_INSUFFICIENT_RESOURCES);
        let client = Client::new(&device);
        let options = DemoOptions {
            bytes: 1000,
            datagrams: 10,
            timeout: Duration::from_secs(2),
            ..DemoOptions::default()
        };
        let report = demo::run(&client, &options);
        assert!(!report.ok);
        assert!(report.results[0]
            .detail
            .contains("STATUS_INSUFFICIENT_RESOURCES"));
        let cli = Cli::try_parse_from([
            "wskctl",
            "demo",
            "--bytes",
            "1000",
            "--datagrams",
            "10",
            "--timeout-secs",
            "2",
        ])
        .unwrap();
        let mut out = Vec::new();
        let code = run(&device, &cli.command, &mut out).unwrap();
        assert_eq!(code, std::process::ExitCode::FAILURE);
        assert!(String::from_utf8(out).unwrap().contains("demo: FAILED"));
    }

    /// A provider like Wine 8.0's netio.sys behind the driver: no datagram sockets
    /// (OPEN_DATAGRAM fails with STATUS_NOT_IMPLEMENTED) and IPv6 connects failing with
    /// another status; everything else works.
    struct WineLikeDevice(FakeDevice);

    impl Device for WineLikeDevice {
        fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
            let fail = |status| IoStatus {
                status,
                information: 0,
            };
            if code == Operation::OpenDatagram.code() {
                return fail(STATUS_NOT_IMPLEMENTED);
            }
            if code == Operation::OpenStream.code() {
                let request: OpenStreamRequest = parse_request(input).unwrap();
                if request.remote_address.to_socket_addr().unwrap().is_ipv6() {
                    return fail(0xC000_0017_u32 as i32); // STATUS_NO_MEMORY, as Wine returns
                }
            }
            self.0.ioctl(code, input, output)
        }
    }

    #[test]
    fn demo_skips_what_the_provider_lacks_and_never_passes_it() {
        let device = WineLikeDevice(FakeDevice::default());
        let client = Client::new(&device);
        let mut options = DemoOptions {
            bytes: 100_000,
            datagrams: 10,
            timeout: Duration::from_secs(5),
            ..DemoOptions::default()
        };
        let verdicts = |report: &demo::DemoReport| -> Vec<(String, String, String)> {
            report
                .results
                .iter()
                .map(|r| (r.operation.clone(), r.family.clone(), r.verified.clone()))
                .collect()
        };
        let ipv6_bindable = TcpListener::bind("[::1]:0").is_ok();
        // Without --ipv6-optional an IPv6 failure other than NOT_IMPLEMENTED/NOT_SUPPORTED
        // fails the demo; datagrams are skipped either way.
        let report = demo::run(&client, &options);
        let rows = verdicts(&report);
        assert_eq!(rows[0].2, "yes");
        if ipv6_bindable {
            assert!(!report.ok, "{}", report.table());
            assert_eq!(rows[1].2, "no");
            assert!(
                report.results[1].detail.contains("0xC0000017"),
                "{}",
                report.results[1].detail
            );
        }
        for r in report
            .results
            .iter()
            .filter(|r| r.operation.contains("send_to"))
        {
            assert_eq!(r.verified, "skipped", "{}", report.table());
            assert_eq!(r.count, 0);
            assert!(
                r.detail
                    .starts_with("skipped: provider lacks datagram sockets"),
                "{}",
                r.detail
            );
            assert!(r.detail.contains("STATUS_NOT_IMPLEMENTED"), "{}", r.detail);
        }
        // With it the IPv6 row is skipped (not passed) and the demo is OK.
        options.ipv6_optional = true;
        let report = demo::run(&client, &options);
        assert!(report.ok, "{}", report.table());
        let rows = verdicts(&report);
        assert_eq!(rows[1].2, "skipped");
        assert!(report.results[1].detail.starts_with("skipped:"));
        let passed: Vec<_> = rows
            .iter()
            .filter(|r| r.2 == "yes")
            .map(|r| r.0.as_str())
            .collect();
        assert_eq!(passed, ["open_stream+send+close", "query_stats"]);
        assert!(report
            .table()
            .contains("skipped: provider lacks datagram sockets"));
    }
}
