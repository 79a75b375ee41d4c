//! How a windows-drivers-rs (`wdk-sys`) driver hands its MDLs to `wsk`.
//!
//! The driver part (`driver` below) is what a KMDF or WDM driver writes: it gets the MDL of
//! a `METHOD_IN_DIRECT` request as a `wdk_sys::PMDL` (from `WdfRequestRetrieveOutputWdmMdl`,
//! or `(*irp).MdlAddress` of a `wdk_sys::PIRP`), casts it to `windows-sys`'s `MDL` (the same
//! wdm.h structure with the same `#[repr(C)]` layout, so the cast is sound), and sends from
//! it without copying.
//!
//! Run on a Linux host: `cargo run -p wsk --example wdk_sys_driver`. There `wdk_sys` is this
//! repository's stand-in (`crates/wdk-sys-standin`: wdk-sys 0.5.2's bindgen shapes, `_MDL`
//! checked field by field against windows-sys in its `tests/layout.rs`), the kernel is
//! `ntsim`, and a loopback `TcpListener` plays the remote host, which checks the bytes.
//! On Windows the real `wdk-sys` needs the WDK, so this example only prints a note there.

#[cfg(not(windows))]
extern crate wdk_sys_standin as wdk_sys;

/// Driver code: the same on Windows with the real `wdk-sys`.
#[cfg(not(windows))]
mod driver {
    use core::ptr::NonNull;

    use windows_sys::Wdk::Foundation::MDL;

    /// Sends the `len` bytes the request's MDL describes on `socket`; PASSIVE_LEVEL.
    ///
    /// # Safety
    /// `mdl` is the locked MDL of a request the driver has not completed yet, describing at
    /// least `len` bytes.
    pub unsafe fn send_request_mdl(
        socket: &wsk::StreamSocket,
        mdl: wdk_sys::PMDL,
        len: usize,
    ) -> Result<usize, wsk::Error> {
        // wdk_sys::_MDL and windows_sys's MDL are both the C `struct _MDL` of wdm.h: same
        // size, alignment and field offsets. The pointer is only passed on, never copied.
        let mdl = NonNull::new(mdl.cast::<MDL>()).ok_or(wsk::Error::InvalidParameter)?;
        // SAFETY: per this function's contract the MDL stays locked until the request
        // completes, which is after `data` is dropped at the end of this function.
        let data = unsafe { wsk::BorrowedMdl::new(mdl, len) };
        socket.send(&data, 0, len)
    }
}

#[cfg(not(windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Read;
    use std::time::Duration;

    use wsk::buf::MdlBuffer;

    ntsim::link();
    let scope = ntsim::Scope::begin();
    let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
    let message = b"sent from a wdk-sys PMDL";
    {
        let client = wsk::WskClient::register(10_000)?;
        let socket =
            wsk::StreamSocket::connect(&client, peer.local_addr()?, Some(Duration::from_secs(5)))?;
        // Stands in for the I/O manager's locked MDL of a request, as wdk-sys types it.
        let request_buffer = wsk::NonPagedBuffer::from_slice(message, wsk::pool::tag(b"Exmp"))?;
        let request_mdl: wdk_sys::PMDL = request_buffer.mdl().cast();
        // SAFETY: `request_buffer` (nonpaged, with its MDL) outlives the call.
        let sent = unsafe { driver::send_request_mdl(&socket, request_mdl, message.len())? };
        assert_eq!(sent, message.len());
        socket.close()?;
    }
    let (mut conn, _) = peer.accept()?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got)?;
    assert_eq!(got, message);
    scope.assert_clean();
    println!(
        "the peer received {} bytes from a wdk_sys::PMDL, byte-exact; no leak",
        got.len()
    );
    Ok(())
}

#[cfg(windows)]
fn main() {
    println!("host demonstration: run it on Linux (the real wdk-sys needs the WDK)");
}
