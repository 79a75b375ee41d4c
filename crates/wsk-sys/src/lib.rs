//! Raw FFI for wsk.h. (Being written.)
#![no_std]
