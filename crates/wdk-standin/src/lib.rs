//! Host stand-in for the one wdk 0.5.0 item `src/kmdf.rs` uses: `println!`. The driver crate
//! names it `wdk` on non-Windows hosts (`extern crate wdk_standin as wdk;`).
//!
//! wdk's `println!` formats into a 512-byte buffer and sends it to `DbgPrint("%s", ..)`
//! (wdk 0.5.0 `src/print.rs`). Here the format string and its arguments are type-checked
//! the same way (`format_args!`) and the line is discarded, as the WDM front-end's host
//! `kdprint!` does: the host has no kernel debugger.
#![no_std]

/// Formats a line as wdk's `println!` does; on the host the line is discarded.
/// Any IRQL (on Windows: <= DIRQL, as `DbgPrint`). Source: wdk 0.5.0 `print.rs`.
#[macro_export]
macro_rules! println {
    () => {
        $crate::_print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::_print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The sink of [`println!`]: discards the formatted line.
#[doc(hidden)]
pub fn _print(args: core::fmt::Arguments<'_>) {
    let _ = args;
}
