//! `WskGetAddressInfo` / `WskFreeAddressInfo` / `WskGetNameInfo` through
//! `WskClient::get_address_info` and `get_name_info`, on the host resolver. No internet:
//! "localhost", numeric addresses, and a name under the reserved ".invalid" TLD (RFC 2606,
//! guaranteed never to resolve). Both completion paths; every list freed (pool checked).

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use windows_sys::Win32::Foundation::STATUS_NO_MATCH;
use wsk::names::FamilyHint;
use wsk::WskClient;

fn forward(mode: CompletionMode) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let v = client
            .get_address_info("localhost", Some("8080"), FamilyHint::Any)
            .expect("localhost");
        assert!(!v.is_empty());
        assert!(
            v.iter().all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{v:?}"
        );
        let v4 = client
            .get_address_info("127.0.0.1", None, FamilyHint::V4)
            .expect("numeric v4");
        assert_eq!(v4, vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap()]);
        let v6 = client
            .get_address_info("::1", Some("443"), FamilyHint::Any)
            .expect("numeric v6");
        assert_eq!(v6, vec!["[::1]:443".parse::<SocketAddr>().unwrap()]);
        let only4 = client
            .get_address_info("::1", None, FamilyHint::V4)
            .expect_err("v6 literal with a v4 hint");
        assert_eq!(only4.status(), STATUS_NO_MATCH);
        // The host name cannot be resolved: STATUS_NO_MATCH, the status the
        // WskGetAddressInfo page lists for it ("STATUS_NO_MATCH: The host name cannot be
        // resolved", https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info).
        let e = client
            .get_address_info("no-such-host.invalid", None, FamilyHint::Any)
            .expect_err("unknown name");
        assert_eq!(e.status(), STATUS_NO_MATCH);
    }
    scope.assert_clean();
}

fn reverse(mode: CompletionMode) {
    let scope = begin(mode);
    {
        let client = WskClient::register(1000).expect("register");
        let name = client
            .get_name_info("127.0.0.1:80".parse().unwrap())
            .expect("reverse 127.0.0.1");
        assert!(!name.is_empty());
        // The name maps back to the loopback address.
        let back = client
            .get_address_info(&name, None, FamilyHint::V4)
            .expect("forward of the reverse");
        assert!(
            back.iter().any(|a| a.ip() == IpAddr::from([127, 0, 0, 1])),
            "{name}: {back:?}"
        );
    }
    scope.assert_clean();
}

#[test]
fn forward_pending() {
    forward(CompletionMode::Pending);
}
#[test]
fn forward_inline() {
    forward(CompletionMode::Inline);
}
#[test]
fn reverse_pending() {
    reverse(CompletionMode::Pending);
}
#[test]
fn reverse_inline() {
    reverse(CompletionMode::Inline);
}
