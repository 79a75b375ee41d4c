//! `WskGetAddressInfo`, `WskFreeAddressInfo`, `WskGetNameInfo`. Placeholder until
//! implemented.
