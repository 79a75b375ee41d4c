//! Host emulation of ntoskrnl + netio.
