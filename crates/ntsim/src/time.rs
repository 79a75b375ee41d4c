//! Time: system time in 100 ns units since 1601-01-01, as `KeQuerySystemTime` gives it.

use std::time::{SystemTime, UNIX_EPOCH};

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_100NS: i64 = 116_444_736_000_000_000;

/// Current system time, 100 ns units since 1601 (UTC).
pub fn system_time_100ns() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    EPOCH_DIFF_100NS + (d.as_nanos() / 100) as i64
}
