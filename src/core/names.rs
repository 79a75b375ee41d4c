//! RESOLVE (docs/ioctl.md): forward queries through `WskGetAddressInfo` (the provider's list
//! always freed with `WskFreeAddressInfo`, by `wsk::WskClient::get_address_info`), reverse
//! queries through `WskGetNameInfo`. PASSIVE_LEVEL only: both wait for their IRP, and
//! IRP_MJ_DEVICE_CONTROL of a top-level driver runs at PASSIVE_LEVEL.
//!
//! Sources: <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>,
//! <https://learn.microsoft.com/en-us/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>.

use super::*;
use wsk::names::FamilyHint;
use wskclient_ioctl::names::*;

/// Writes `port` as a decimal string into `buf`; returns it.
fn decimal(port: u16, buf: &mut [u8; 5]) -> &str {
    let mut n = port;
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..)
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or("")
}

impl DeviceCore {
    /// RESOLVE: PASSIVE_LEVEL (waits for the provider).
    ///
    /// Forward: the UTF-8 name is converted to the counted UTF-16 `UNICODE_STRING` WSK takes
    /// (by `get_address_info`), the port (if any) is passed as its decimal `ServiceName`, the
    /// family hint as `ai_family`; the response carries the addresses (as many as fit).
    /// Reverse: the host name `WskGetNameInfo` returns, as UTF-8.
    ///
    /// Errors: the contract's (docs/ioctl.md); `STATUS_BUFFER_TOO_SMALL` when the output
    /// cannot hold the 24-byte response (forward) or the response and the name (reverse);
    /// `STATUS_NO_MATCH` when the name cannot be resolved (WskGetAddressInfo's return table)
    /// or, on ntsim, the address has no name; `STATUS_NOT_IMPLEMENTED` when the provider
    /// lacks the routine; any other status of the provider.
    pub(super) fn resolve(&self, input: &[u8], output: &mut [u8]) -> Result<usize, NTSTATUS> {
        let query = contract(parse_resolve(input))?;
        if output.len() < ResolveResponse::SIZE {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        match query {
            ResolveQuery::Forward { name, port, family } => {
                let hint = match family {
                    ioctl::AF_INET => FamilyHint::V4,
                    ioctl::AF_INET6 => FamilyHint::V6,
                    _ => FamilyHint::Any,
                };
                let mut digits = [0u8; 5];
                let service = port.map(|p| decimal(p, &mut digits));
                let addrs = self
                    .client
                    .get_address_info(name, service, hint)
                    .map_err(|e| e.status())?;
                contract(write_resolve_addresses(output, &addrs))
            }
            ResolveQuery::Reverse { address } => {
                let name = self.client.get_name_info(address).map_err(|e| e.status())?;
                contract(write_resolve_name(output, &name))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_ports() {
        let mut b = [0u8; 5];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(7, &mut b), "7");
        assert_eq!(decimal(80, &mut b), "80");
        assert_eq!(decimal(65535, &mut b), "65535");
        assert_eq!(decimal(10000, &mut b), "10000");
    }
}
