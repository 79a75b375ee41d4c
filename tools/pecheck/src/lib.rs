//! Static checks on a Windows kernel-driver image (`.sys`), for the Windows lane
//! (`ci/windows-lane.sh`):
//!
//! - PE32+ (optional-header magic 0x20b), machine AMD64;
//! - subsystem NATIVE (1);
//! - `IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY` (0x80, lld-link `/INTEGRITYCHECK`);
//! - the optional header's CheckSum equals the PE checksum of the file (lld-link `/RELEASE`);
//! - no TLS directory (drivers cannot use TLS);
//! - imports only from the allowed DLLs (default `ntoskrnl.exe`, `hal.dll`, `netio.sys`);
//!   an import from `ntdll.dll` (user mode, which windows-sys uses for `DbgPrint` and
//!   hundreds of other kernel routines) fails with a dedicated message;
//! - exports only the allowed names (default `DriverEntry`).
//!
//! The parsing is `object`'s; the policy and the checksum are ours.

use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader, PeFile64};
use object::{LittleEndian as LE, Object};

/// What an image may import and export.
#[derive(Clone, Debug)]
pub struct Policy {
    /// DLLs imports may come from (compared case-insensitively).
    pub allow_dll: Vec<String>,
    /// Names the image may export.
    pub allow_export: Vec<String>,
    /// Require FORCE_INTEGRITY.
    pub require_integrity: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_dll: split_list("ntoskrnl.exe,hal.dll,netio.sys"),
            allow_export: split_list("DriverEntry"),
            require_integrity: true,
        }
    }
}

/// Splits `a,b,c` into trimmed non-empty names.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// The result of [`check`].
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Lines describing the image (headers, imports, exports).
    pub info: Vec<String>,
    /// `(dll, name)` of every import, in table order (`#N` for imports by ordinal).
    pub imports: Vec<(String, String)>,
    /// Exported names.
    pub exports: Vec<String>,
    /// Failed checks; empty = pass.
    pub failures: Vec<String>,
}

impl Report {
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The PE image checksum, as imagehlp's `CheckSumMappedFile` computes it: the file's
/// little-endian 16-bit words summed with end-around carry, the 4-byte CheckSum field
/// (at `checksum_offset`) counted as zero, folded to 16 bits, plus the file length.
pub fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < data.len() {
        if i == checksum_offset {
            i += 4;
            continue;
        }
        let lo = u64::from(data[i]);
        let hi = data.get(i + 1).map_or(0, |&b| u64::from(b));
        sum += lo | (hi << 8);
        sum = (sum & 0xffff) + (sum >> 16);
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32 & 0xffff).wrapping_add(data.len() as u32)
}

/// The optional-header magic of a PE image, if it has MZ and PE signatures.
pub fn pe_magic(data: &[u8]) -> Option<u16> {
    if data.get(0..2)? != b"MZ" {
        return None;
    }
    let nt_off = u32::from_le_bytes(data.get(0x3c..0x40)?.try_into().ok()?) as usize;
    if data.get(nt_off..nt_off + 4)? != b"PE\0\0" {
        return None;
    }
    let off = nt_off + 4 + 20;
    Some(u16::from_le_bytes(data.get(off..off + 2)?.try_into().ok()?))
}

/// Offset of the optional header's CheckSum field (offset 64 in PE32 and PE32+ alike).
fn checksum_offset(data: &[u8]) -> Option<usize> {
    let nt_off = u32::from_le_bytes(data.get(0x3c..0x40)?.try_into().ok()?) as usize;
    Some(nt_off + 4 + std::mem::size_of::<pe::ImageFileHeader>() + 64)
}

/// The exported names of a PE32+ image, sorted.
///
/// Errors: not a parsable PE32+ image, or an unreadable export table.
pub fn exports(data: &[u8]) -> Result<Vec<String>, String> {
    let file = PeFile64::parse(data).map_err(|e| format!("not a parsable PE32+ image: {e}"))?;
    let mut names: Vec<String> = file
        .exports()
        .map_err(|e| format!("export table: {e}"))?
        .iter()
        .map(|e| String::from_utf8_lossy(e.name()).into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Checks `data` against `policy`.
///
/// Errors: the image is PE32+ but `object` cannot parse it. A non-PE32+ image is a failed
/// check, not an error.
pub fn check(data: &[u8], policy: &Policy) -> Result<Report, String> {
    let mut r = Report::default();
    let magic = pe_magic(data);
    if magic != Some(pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC) {
        r.failures.push(format!(
            "not PE32+ (optional header magic {}, want 0x20b)",
            magic.map_or("none".to_string(), |m| format!("{m:#x}"))
        ));
        return Ok(r);
    }
    let file = PeFile64::parse(data).map_err(|e| format!("not a parsable PE32+ image: {e}"))?;
    let nt = file.nt_headers();
    let fh = nt.file_header();
    let oh = nt.optional_header();

    r.info.push(format!("magic: {:#x} (PE32+)", oh.magic()));
    let machine = fh.machine.get(LE);
    r.info.push(format!("machine: {machine:#x}"));
    if machine != pe::IMAGE_FILE_MACHINE_AMD64 {
        r.failures
            .push(format!("machine {machine:#x} is not AMD64 (0x8664)"));
    }

    let subsystem = oh.subsystem();
    r.info.push(format!("subsystem: {subsystem}"));
    if subsystem != pe::IMAGE_SUBSYSTEM_NATIVE {
        r.failures.push(format!(
            "subsystem {subsystem} is not NATIVE (1): link with /SUBSYSTEM:NATIVE"
        ));
    }

    let dllch = oh.dll_characteristics();
    r.info.push(format!("dll characteristics: {dllch:#06x}"));
    if policy.require_integrity && dllch & pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY == 0 {
        r.failures.push(format!(
            "dll characteristics {dllch:#06x} lack FORCE_INTEGRITY (0x80): link with /INTEGRITYCHECK"
        ));
    }

    let stored = oh.check_sum();
    let computed = checksum_offset(data).map_or(0, |off| pe_checksum(data, off));
    r.info.push(format!(
        "checksum: stored {stored:#010x}, computed {computed:#010x}"
    ));
    if stored != computed {
        r.failures.push(format!(
            "checksum stored {stored:#010x} != computed {computed:#010x} (link with /RELEASE)"
        ));
    }

    let tls = file
        .data_directory(pe::IMAGE_DIRECTORY_ENTRY_TLS)
        .map_or(0, |d| d.size.get(LE));
    if tls != 0 {
        r.failures.push(format!(
            "image has a TLS directory ({tls} bytes); drivers cannot use TLS"
        ));
    }

    match file.imports() {
        Ok(imps) => {
            for imp in &imps {
                let lib = String::from_utf8_lossy(imp.library()).into_owned();
                let name = String::from_utf8_lossy(imp.name()).into_owned();
                if !policy
                    .allow_dll
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&lib))
                {
                    let why = if lib.eq_ignore_ascii_case("ntdll.dll") {
                        " (ntdll.dll is user mode; route it through an ntoskrnl.exe import in crates/nt-imports)"
                    } else {
                        ""
                    };
                    r.failures.push(format!(
                        "import {lib}!{name} is from a DLL not allowed{why}"
                    ));
                }
                r.imports.push((lib, name));
            }
        }
        Err(e) => r.failures.push(format!("cannot read import table: {e}")),
    }

    match file.exports() {
        Ok(exps) => {
            for e in &exps {
                let name = String::from_utf8_lossy(e.name()).into_owned();
                if !policy.allow_export.iter().any(|a| a == &name) {
                    r.failures
                        .push(format!("export {name} is not in the allowed list"));
                }
                r.exports.push(name);
            }
        }
        Err(e) => r.failures.push(format!("cannot read export table: {e}")),
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    //! The fixtures are PE32+ images built byte by byte by [`TestPe`]: headers, one
    //! `.rdata` section holding an import table and an export table, and a correct checksum.
    use super::*;

    #[test]
    fn checksum_skips_field_and_adds_length() {
        // words 0x0201 + 0x0403 (the field at offset 4 is skipped), + length 8
        let d = [1u8, 2, 3, 4, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(pe_checksum(&d, 4), 0x0604 + 8);
    }

    #[test]
    fn checksum_folds_carry_and_odd_length() {
        let d = [0xffu8, 0xff, 0x02, 0x00];
        // 0xffff + 0x0002 = 0x10001 -> folded 0x0002, + length 4
        assert_eq!(pe_checksum(&d, 100), 0x0002 + 4);
        // odd length: the last byte is the low half of a word
        assert_eq!(pe_checksum(&[0x01, 0x00, 0x05], 100), 0x0006 + 3);
    }

    /// A synthetic PE32+ image.
    struct TestPe {
        magic: u16,
        subsystem: u16,
        dll_characteristics: u16,
        imports: Vec<(&'static str, Vec<&'static str>)>,
        exports: Vec<&'static str>,
        /// Put the export directory at an RVA that is 2 mod 4, as lld-link does.
        misalign_exports: bool,
        /// Store a checksum off by one.
        bad_checksum: bool,
    }

    impl TestPe {
        /// What a correct driver looks like.
        fn driver() -> Self {
            TestPe {
                magic: 0x20b,
                subsystem: 1,
                dll_characteristics: 0x01e0,
                imports: vec![
                    ("ntoskrnl.exe", vec!["DbgPrintEx", "IoCreateDevice"]),
                    ("netio.sys", vec!["WskRegister", "WskDeregister"]),
                ],
                exports: vec!["DriverEntry"],
                misalign_exports: true,
                bad_checksum: false,
            }
        }

        fn build(&self) -> Vec<u8> {
            const SEC_RVA: u32 = 0x1000;
            const SEC_RAW: usize = 0x200;
            // ---- section contents
            let mut s: Vec<u8> = Vec::new();
            let rva = |s: &Vec<u8>| SEC_RVA + s.len() as u32;
            let align = |s: &mut Vec<u8>, a: usize| {
                while !s.len().is_multiple_of(a) {
                    s.push(0);
                }
            };
            let put32 = |s: &mut Vec<u8>, at: usize, v: u32| {
                s[at..at + 4].copy_from_slice(&v.to_le_bytes())
            };
            // imports: descriptors first
            let import_dir = rva(&s);
            let ndesc = self.imports.len() + 1;
            s.resize(ndesc * 20, 0);
            for (i, (dll, names)) in self.imports.iter().enumerate() {
                align(&mut s, 8);
                let mut thunk_rvas = Vec::new();
                for n in names {
                    align(&mut s, 2);
                    thunk_rvas.push(rva(&s));
                    s.extend_from_slice(&0u16.to_le_bytes());
                    s.extend_from_slice(n.as_bytes());
                    s.push(0);
                }
                let dll_name = rva(&s);
                s.extend_from_slice(dll.as_bytes());
                s.push(0);
                let mut tables = [0u32; 2];
                for t in &mut tables {
                    align(&mut s, 8);
                    *t = rva(&s);
                    for &h in &thunk_rvas {
                        s.extend_from_slice(&u64::from(h).to_le_bytes());
                    }
                    s.extend_from_slice(&0u64.to_le_bytes());
                }
                let d = i * 20;
                put32(&mut s, d, tables[0]); // OriginalFirstThunk (ILT)
                put32(&mut s, d + 12, dll_name);
                put32(&mut s, d + 16, tables[1]); // FirstThunk (IAT)
            }
            // exports
            let mut export_dir = (0u32, 0u32);
            if !self.exports.is_empty() {
                align(&mut s, 4);
                if self.misalign_exports {
                    s.extend_from_slice(&[0, 0]);
                }
                let start = s.len();
                export_dir.0 = rva(&s);
                s.resize(start + 40, 0);
                let n = self.exports.len() as u32;
                let name_of_image = rva(&s);
                s.extend_from_slice(b"test.sys\0");
                let eat = rva(&s);
                for _ in 0..n {
                    s.extend_from_slice(&SEC_RVA.to_le_bytes()); // any RVA outside the directory
                }
                let mut name_rvas = Vec::new();
                let names_at = s.len();
                s.resize(names_at + 4 * n as usize, 0);
                let ordinals = rva(&s);
                for i in 0..n as u16 {
                    s.extend_from_slice(&i.to_le_bytes());
                }
                for e in &self.exports {
                    name_rvas.push(rva(&s));
                    s.extend_from_slice(e.as_bytes());
                    s.push(0);
                }
                for (i, r) in name_rvas.iter().enumerate() {
                    put32(&mut s, names_at + 4 * i, *r);
                }
                put32(&mut s, start + 12, name_of_image);
                put32(&mut s, start + 16, 1); // Base
                put32(&mut s, start + 20, n);
                put32(&mut s, start + 24, n);
                put32(&mut s, start + 28, eat);
                put32(&mut s, start + 32, SEC_RVA + names_at as u32);
                put32(&mut s, start + 36, ordinals);
                export_dir.1 = (s.len() - start) as u32;
            }
            let vsize = s.len() as u32;
            align(&mut s, 0x200);

            // ---- headers
            let mut f = vec![0u8; SEC_RAW];
            f[0..2].copy_from_slice(b"MZ");
            f[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
            f[0x40..0x44].copy_from_slice(b"PE\0\0");
            let fh = 0x44;
            f[fh..fh + 2].copy_from_slice(&0x8664u16.to_le_bytes());
            f[fh + 2..fh + 4].copy_from_slice(&1u16.to_le_bytes()); // sections
            f[fh + 16..fh + 18].copy_from_slice(&240u16.to_le_bytes());
            f[fh + 18..fh + 20].copy_from_slice(&0x0022u16.to_le_bytes()); // EXECUTABLE | LARGE_ADDRESS_AWARE
            let oh = fh + 20;
            let w16 = |f: &mut Vec<u8>, at: usize, v: u16| {
                f[at..at + 2].copy_from_slice(&v.to_le_bytes())
            };
            let w32 = |f: &mut Vec<u8>, at: usize, v: u32| {
                f[at..at + 4].copy_from_slice(&v.to_le_bytes())
            };
            let w64 = |f: &mut Vec<u8>, at: usize, v: u64| {
                f[at..at + 8].copy_from_slice(&v.to_le_bytes())
            };
            w16(&mut f, oh, self.magic);
            w32(&mut f, oh + 16, SEC_RVA); // AddressOfEntryPoint
            w64(&mut f, oh + 24, 0x1_4000_0000); // ImageBase
            w32(&mut f, oh + 32, 0x1000); // SectionAlignment
            w32(&mut f, oh + 36, 0x200); // FileAlignment
            w16(&mut f, oh + 40, 10); // OS version
            w16(&mut f, oh + 48, 10); // subsystem version
            w32(&mut f, oh + 56, SEC_RVA + vsize.div_ceil(0x1000) * 0x1000); // SizeOfImage
            w32(&mut f, oh + 60, SEC_RAW as u32); // SizeOfHeaders
            w16(&mut f, oh + 68, self.subsystem);
            w16(&mut f, oh + 70, self.dll_characteristics);
            w64(&mut f, oh + 72, 0x40000);
            w64(&mut f, oh + 80, 0x1000);
            w32(&mut f, oh + 108, 16); // NumberOfRvaAndSizes
            let dd = oh + 112;
            w32(&mut f, dd, export_dir.0);
            w32(&mut f, dd + 4, export_dir.1);
            w32(&mut f, dd + 8, import_dir);
            w32(&mut f, dd + 12, (ndesc * 20) as u32);
            let sh = oh + 240;
            f[sh..sh + 8].copy_from_slice(b".rdata\0\0");
            w32(&mut f, sh + 8, vsize);
            w32(&mut f, sh + 12, SEC_RVA);
            w32(&mut f, sh + 16, s.len() as u32);
            w32(&mut f, sh + 20, SEC_RAW as u32);
            w32(&mut f, sh + 36, 0x4000_0040); // INITIALIZED_DATA | MEM_READ
            f.extend_from_slice(&s);
            let off = oh + 64;
            let sum = pe_checksum(&f, off).wrapping_add(u32::from(self.bad_checksum));
            w32(&mut f, off, sum);
            f
        }
    }

    fn run(pe: &TestPe) -> Report {
        check(&pe.build(), &Policy::default()).unwrap()
    }

    #[test]
    fn a_correct_driver_passes_and_lists_its_imports() {
        let r = run(&TestPe::driver());
        assert!(r.passed(), "{:?}", r.failures);
        let imports: Vec<String> = r.imports.iter().map(|(d, n)| format!("{d}!{n}")).collect();
        assert_eq!(
            imports,
            [
                "ntoskrnl.exe!DbgPrintEx",
                "ntoskrnl.exe!IoCreateDevice",
                "netio.sys!WskRegister",
                "netio.sys!WskDeregister"
            ]
        );
        assert_eq!(r.exports, ["DriverEntry"]);
        assert_eq!(exports(&TestPe::driver().build()).unwrap(), ["DriverEntry"]);
    }

    #[test]
    fn an_ntdll_import_fails() {
        let mut pe = TestPe::driver();
        pe.imports.push(("ntdll.dll", vec!["DbgPrint"]));
        let r = run(&pe);
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert!(r.failures[0].starts_with(
            "import ntdll.dll!DbgPrint is from a DLL not allowed (ntdll.dll is user mode"
        ));
        // case-insensitive DLL names: NTDLL.DLL is still ntdll.dll, NTOSKRNL.EXE still allowed
        let mut pe = TestPe::driver();
        pe.imports = vec![
            ("NTOSKRNL.EXE", vec!["KeSetEvent"]),
            ("NTDLL.DLL", vec!["RtlCopyMemory"]),
        ];
        let r = run(&pe);
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert!(r.failures[0].contains("ntdll.dll is user mode"));
    }

    #[test]
    fn other_user_mode_imports_fail() {
        let mut pe = TestPe::driver();
        pe.imports.push(("kernel32.dll", vec!["Sleep"]));
        let r = run(&pe);
        assert_eq!(
            r.failures,
            ["import kernel32.dll!Sleep is from a DLL not allowed"]
        );
    }

    #[test]
    fn a_wrong_checksum_fails() {
        let mut pe = TestPe::driver();
        pe.bad_checksum = true;
        let r = run(&pe);
        assert_eq!(r.failures.len(), 1);
        assert!(
            r.failures[0].starts_with("checksum stored"),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn wrong_subsystem_and_missing_integrity_fail() {
        let mut pe = TestPe::driver();
        pe.subsystem = 3; // console
        pe.dll_characteristics = 0x0160;
        let r = run(&pe);
        assert_eq!(r.failures.len(), 2, "{:?}", r.failures);
        assert!(r.failures[0].starts_with("subsystem 3 is not NATIVE"));
        assert!(r.failures[1].contains("lack FORCE_INTEGRITY"));
        let policy = Policy {
            require_integrity: false,
            ..Policy::default()
        };
        let mut pe = TestPe::driver();
        pe.dll_characteristics = 0x0160;
        assert!(check(&pe.build(), &policy).unwrap().passed());
    }

    #[test]
    fn unexpected_exports_fail() {
        let mut pe = TestPe::driver();
        pe.exports = vec!["DriverEntry", "_fltused"];
        let r = run(&pe);
        assert_eq!(r.failures, ["export _fltused is not in the allowed list"]);
        // no exports at all is fine, aligned directory too
        let mut pe = TestPe::driver();
        pe.exports.clear();
        assert!(run(&pe).passed());
        let mut pe = TestPe::driver();
        pe.misalign_exports = false;
        assert!(run(&pe).passed());
    }

    #[test]
    fn pe32_and_garbage_are_not_pe32_plus() {
        let mut pe = TestPe::driver();
        pe.magic = 0x10b;
        let r = check(&pe.build(), &Policy::default()).unwrap();
        assert_eq!(
            r.failures,
            ["not PE32+ (optional header magic 0x10b, want 0x20b)"]
        );
        let r = check(b"not a PE at all", &Policy::default()).unwrap();
        assert_eq!(
            r.failures,
            ["not PE32+ (optional header magic none, want 0x20b)"]
        );
    }
}
