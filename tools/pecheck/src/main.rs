//! `pecheck`: static checks on a Windows kernel-driver image (see the library docs).
//!
//! Usage:
//!   pecheck [--allow-dll a,b] [--allow-export a,b] [--no-integrity] [--quiet] FILE.sys
//!   pecheck --dump-exports FILE            (a PE's exported names, one a line)
//!
//! Exit status: 0 all checks passed, 1 a check failed, 2 usage or parse error.

use pecheck::{check, exports, split_list, Policy};
use std::process::ExitCode;

struct Opts {
    file: String,
    policy: Policy,
    dump_exports: bool,
    quiet: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        file: String::new(),
        policy: Policy::default(),
        dump_exports: false,
        quiet: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--allow-dll" => {
                o.policy.allow_dll = split_list(&args.next().ok_or("--allow-dll needs a value")?)
            }
            "--allow-export" => {
                o.policy.allow_export =
                    split_list(&args.next().ok_or("--allow-export needs a value")?)
            }
            "--no-integrity" => o.policy.require_integrity = false,
            "--dump-exports" => o.dump_exports = true,
            "--quiet" => o.quiet = true,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if !o.file.is_empty() {
                    return Err("only one file may be given".into());
                }
                o.file = s.to_string();
            }
        }
    }
    if o.file.is_empty() {
        return Err("no file given".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("pecheck: {e}");
            }
            eprintln!("usage: pecheck [--allow-dll a,b] [--allow-export a,b] [--no-integrity] [--quiet] FILE");
            eprintln!("       pecheck --dump-exports FILE");
            return ExitCode::from(2);
        }
    };
    let data = match std::fs::read(&o.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pecheck: {}: {e}", o.file);
            return ExitCode::from(2);
        }
    };
    if o.dump_exports {
        return match exports(&data) {
            Ok(names) => {
                for n in names {
                    println!("{n}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pecheck: {}: {e}", o.file);
                ExitCode::from(2)
            }
        };
    }
    let report = match check(&data, &o.policy) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pecheck: {}: {e}", o.file);
            return ExitCode::from(2);
        }
    };
    if !o.quiet {
        println!("file: {} ({} bytes)", o.file, data.len());
        for line in &report.info {
            println!("{line}");
        }
        println!("imports ({}):", report.imports.len());
        for (dll, name) in &report.imports {
            println!("  {dll}!{name}");
        }
        println!("exports ({}):", report.exports.len());
        for name in &report.exports {
            println!("  {name}");
        }
    }
    if report.passed() {
        println!("PASS {}", o.file);
        ExitCode::SUCCESS
    } else {
        for f in &report.failures {
            println!("FAIL: {f}");
        }
        println!("FAIL {} ({} problem(s))", o.file, report.failures.len());
        ExitCode::from(1)
    }
}
